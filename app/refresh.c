/*
 * refresh.c: placeholder until the refresher lands (branch accounts):
 * hands out the stored token of an active account, refreshing nothing.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "accounts.h"
#include "refresh.h"
#include "req.h"
#include "store.h"

int
refresh_ensure(struct server *srv, const char *id, int force, char **access,
    char *err, size_t errlen)
{
	struct account	*a;
	int		 rc;

	(void)force;
	*access = NULL;
	if (!srv->have_key) {
		snprintf(err, errlen, "no sealing key: %s", srv->key_err);
		return -EIO;
	}
	if ((rc = store_account_get(srv->st, id, &a)) != 0) {
		snprintf(err, errlen, "%s", store_strerror(rc));
		return rc;
	}
	if (strcmp(a->status, "active") != 0) {
		snprintf(err, errlen, "account is %s", a->status);
		account_free(a);
		return -EPERM;
	}
	rc = account_open_tokens(srv->seal_key, a, access, NULL);
	if (rc != 0)
		snprintf(err, errlen, "cannot open the sealed token");
	account_free(a);
	return rc;
}
