/*
 * cli.h: the operator's subcommands.  Each takes argc/argv after its own
 * name and returns an exit status: 0 ok, 1 failed, 2 usage.
 */
#ifndef QR_CLI_H
#define QR_CLI_H

struct cfg;

int	cli_keys(const struct cfg *, int, char **);
int	cli_accounts(const struct cfg *, int, char **);
int	cli_refresh(const struct cfg *, int, char **);
int	cli_config(const struct cfg *, int, char **);
int	cli_accounts_add(const struct cfg *, int, char **);
/* Open the store for a command; prints the reason on failure. */
struct store *cli_store_open(const struct cfg *);

#endif
