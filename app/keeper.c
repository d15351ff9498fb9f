/*
 * keeper.c: the serve pool's housekeeping process.
 *
 * One child of the serve master, forked like the workers (store and curl
 * are opened here, after fork).  It keeps tokens fresh before any request
 * needs them, so a request rarely pays for a refresh, and it clears what
 * dead processes leave behind: LMDB reader slots and expired logins.
 * Refreshes go through refresh_ensure, so they never race a worker.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "accounts.h"
#include "cfg.h"
#include "keeper.h"
#include "log.h"
#include "catalog.h"
#include "provider.h"
#include "refresh.h"
#include "req.h"
#include "store.h"
#include "util.h"
#include "worker.h"
#include "xmalloc.h"

static volatile sig_atomic_t keeper_stop;

static void
on_term(int sig)
{
	(void)sig;
	keeper_stop = 1;
}

int
keeper_pass(struct server *srv)
{
	const struct cfg	 *c = srv->cfg;
	const struct provider	 *p;
	struct account		**l;
	size_t			  n, i;
	int64_t			  buf = (c->proactive_refresh_buffer_seconds +
	    REFRESH_SKEW_SECONDS) * 1000, now = now_ms();
	char			 *access, err[512];
	int			  done = 0, rc;

	store_reader_check(srv->st);
	store_login_purge(srv->st, now);
	store_response_purge(srv->st, now);
	catalog_keeper_pass(srv);
	if (!c->proactive_token_refresh || !srv->have_key)
		return 0;
	if (store_account_list(srv->st, &l, &n) != 0)
		return 0;
	for (i = 0; i < n && !keeper_stop; i++) {
		p = provider_find(l[i]->provider);
		if (p == NULL || !p->oauth ||
		    l[i]->state != ACCT_ACTIVE ||
		    l[i]->expires_at == 0 || l[i]->expires_at - now >= buf)
			continue;
		rc = refresh_ensure(srv, l[i]->id, REFRESH_BLOCKING, &access,
		    err, sizeof(err));
		xfree_secret(access);
		if (rc == 0)
			done++;
		else
			log_warn("keeper: %s", err);
	}
	account_list_free(l, n);
	return done;
}

int
keeper_run(const struct cfg *c)
{
	struct server		 srv;
	int64_t			 next = 0;

	server_signals(on_term);
	memset(&srv, 0, sizeof(srv));
	srv.cfg = c;
	srv.started_ms = now_ms();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	while (!keeper_stop) {
		if (mono_ms() < next) {
			usleep(200 * 1000);
			continue;
		}
		next = mono_ms() + c->proactive_refresh_check_interval_seconds *
		    1000;
		if (server_open(&srv, c, "keeper") != 0)
			continue;
		keeper_pass(&srv);
	}
	server_close(&srv);
	curl_global_cleanup();
	return 0;
}
