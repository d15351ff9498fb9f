/*
 * test_counters.c: usage counters saturate instead of wrapping: a record
 * near INT64_MAX (a damaged one, or decades of traffic) plus more stays
 * at INT64_MAX, never turns negative; the stats counter behind
 * round-robin does the same.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "store.h"
#include "tap.h"

static int64_t
field(const char *json, const char *k)
{
	json_object	*o = json_tokener_parse(json), *v;
	int64_t		 n = -1;

	if (o != NULL && json_object_object_get_ex(o, k, &v))
		n = json_object_get_int64(v);
	json_object_put(o);
	return n;
}

int
main(void)
{
	struct store		*st;
	struct store_opts	 so = { 16, 64 };
	struct usage		 u;
	char			 err[256], dir[512], *json = NULL;
	int64_t			 n = 0;
	int			 i;

	plan(4);
	snprintf(dir, sizeof(dir), "%s/st", test_tmpdir());
	if (store_open(&st, dir, &so, err, sizeof(err)) != 0)
		bail("store: %s", err);
	memset(&u, 0, sizeof(u));
	u.requests = 1;
	u.prompt_tokens = INT64_MAX / 2;
	u.completion_tokens = INT64_MAX / 2;
	u.errors = 1;
	u.error_class = "upstream";
	for (i = 0; i < 4; i++)
		if (store_usage_add(st, 'a', "acct1", &u) != 0)
			bail("usage add");
	if (store_usage_get(st, 'a', "acct1", &json) != 0 || json == NULL)
		bail("usage get");
	is_int(INT64_MAX, field(json, "prompt_tokens"),
	    "prompt_tokens saturate at INT64_MAX");
	is_int(INT64_MAX, field(json, "completion_tokens"),
	    "completion_tokens saturate at INT64_MAX");
	is_int(4, field(json, "requests"), "requests still count");
	free(json);
	store_stats_incr(st, "rr", INT64_MAX, NULL);
	store_stats_incr(st, "rr", INT64_MAX, &n);
	is_int(INT64_MAX, n, "a stats counter saturates too");
	store_close(st);
	test_tmpdir_cleanup();
	return 0;
}
