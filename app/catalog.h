/*
 * catalog.h: each account's model catalog, from its upstream's
 * GET {base}/models (OpenAI's list shape), kept in the account record.
 *
 * Fetched at `accounts add`, on `accounts refresh-models ID`, and by the
 * keeper when older than CATALOG_MAX_AGE_S.  An account serves its
 * operator's --models when given, else its catalog when one was fetched
 * and lists anything, else its preset's defaults (account_models()).  A
 * catalog that cannot be fetched is recorded as catalog_error and
 * reported; the account keeps serving what it served.
 */
#ifndef QR_CATALOG_H
#define QR_CATALOG_H

#include <stddef.h>

struct server;
struct account;

#define CATALOG_MAX_AGE_S	3600	/* the keeper refetches after this */
#define CATALOG_TIMEOUT_S	15
#define CATALOG_MAX_IDS		4096	/* ids kept of one answer */

/*
 * The model ids of an OpenAI list answer {"data":[{"id":...},...]}, in
 * order, duplicates and non-string ids left out, at most CATALOG_MAX_IDS.
 * Returns 0 and a NULL-terminated list (free with xfree_strv), or
 * -EINVAL with the reason in err.  Pure.
 */
int	catalog_parse(const char *body, char ***ids, char *err, size_t errlen);

/*
 * GET {base}/models of the account with its token (API key, or a fresh
 * OAuth token) and the provider's headers.  Returns 0 with *ids, or a
 * negative errno with a sentence in err (never a token).
 */
int	catalog_fetch_openai(struct server *, const struct account *,
	    char ***ids, char *err, size_t errlen);

/*
 * Fetch account id's catalog and store it (catalog, catalog_at = now; a
 * failure is stored in catalog_error, the old catalog kept).  *count gets the
 * number of ids.  Returns 0, or a negative errno with err set.
 */
int	catalog_refresh(struct server *, const char *id, size_t *count,
	    char *err, size_t errlen);

/*
 * The keeper's pass: refresh the catalogs of active accounts without
 * --models whose last attempt is older than CATALOG_MAX_AGE_S, or failed
 * and is older than proactive_refresh_check_interval_seconds.  Returns
 * how many were refreshed.
 */
int	catalog_keeper_pass(struct server *);

#endif
