/*
 * test_pool.c: the serve process manager's decision, from a table.
 */
#include "config.h"

#include "pool.h"
#include "tap.h"

int
main(void)
{
	static const struct {
		int		dynamic, live, idle, max, min_spare, max_spare;
		int		want;
		const char	*why;
	} t[] = {
		{ 0, 0, 0, 4, 1, 2, 4, "static: always max" },
		{ 0, 6, 6, 4, 1, 2, 4, "static: max even when more live" },
		{ 1, 0, 0, 4, 1, 2, 1, "dynamic: never fewer than one" },
		{ 1, 1, 0, 4, 1, 2, 2, "dynamic: no spare, grow by one" },
		{ 1, 3, 0, 4, 1, 2, 4, "dynamic: grow up to max" },
		{ 1, 4, 0, 4, 1, 2, 4, "dynamic: at max, no more" },
		{ 1, 2, 1, 4, 1, 2, 2, "dynamic: spare within bounds: as is" },
		{ 1, 4, 3, 4, 1, 2, 3, "dynamic: too many idle, shrink by one" },
		{ 1, 1, 1, 4, 0, 0, 1, "dynamic: never below one" },
		{ 1, 3, 1, 4, 2, 3, 4, "dynamic: min_spare 2, grow" },
		{ 1, 6, 2, 4, 1, 2, 4, "dynamic: above max after a reload" },
	};
	size_t	i;

	plan_lazy();
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		is_int(t[i].want, pool_target(t[i].dynamic, t[i].live,
		    t[i].idle, t[i].max, t[i].min_spare, t[i].max_spare),
		    "%s", t[i].why);
	{
		static const struct { int crashes; long long ms; } b[] = {
			{ 0, 100 }, { 1, 200 }, { 2, 400 }, { 3, 800 },
			{ 8, 25600 }, { 9, 30000 }, { 30, 30000 }, { 1000, 30000 },
		};
		for (i = 0; i < sizeof(b) / sizeof(b[0]); i++)
			is_int(b[i].ms, pool_backoff_ms(b[i].crashes),
			    "backoff after %d crashes", b[i].crashes);
	}
	return 0;
}
