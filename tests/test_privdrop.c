/*
 * test_privdrop.c: what serve does about root, from a table.
 */
#include "config.h"

#include <stddef.h>

#include "privdrop.h"
#include "tap.h"

int
main(void)
{
	static const struct {
		uid_t		 euid;
		const char	*user;
		int		 run_as_root;
		enum priv_plan	 want;
		const char	*why;
	} t[] = {
		{ 1000, "", 0, PRIV_KEEP, "not root: run as we are" },
		{ 1000, "qwenrelay", 0, PRIV_KEEP, "not root, user set: no switch" },
		{ 33, "", 1, PRIV_KEEP, "not root, run_as_root: nothing to do" },
		{ 0, "qwenrelay", 0, PRIV_DROP, "root with user: drop" },
		{ 0, "qwenrelay", 1, PRIV_DROP, "root with user and run_as_root: drop" },
		{ 0, "", 1, PRIV_ROOT, "root, no user, run_as_root: stay" },
		{ 0, "", 0, PRIV_REFUSE, "root, no user: refuse" },
		{ 0, NULL, 0, PRIV_REFUSE, "root, user unset: refuse" },
	};
	size_t	i;

	plan(sizeof(t) / sizeof(t[0]));
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		is_int(t[i].want, priv_plan(t[i].euid, t[i].user,
		    t[i].run_as_root), "%s", t[i].why);
	return 0;
}
