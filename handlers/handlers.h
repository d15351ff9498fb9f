/*
 * handlers.h: one handler per route family; each file exports only its
 * handle_<name>().  A handler returns 0 after writing a complete response,
 * or a negative errno having written nothing (the dispatcher answers).
 */
#ifndef QR_HANDLERS_H
#define QR_HANDLERS_H

struct req;

int	handle_health(struct req *);
int	handle_health_deep(struct req *);
int	handle_chat(struct req *);
int	handle_embeddings(struct req *);
int	handle_models(struct req *);
int	handle_responses(struct req *);
int	handle_messages(struct req *);
int	handle_count_tokens(struct req *);
int	handle_model(struct req *);
int	handle_admin_accounts(struct req *);
int	handle_admin_account(struct req *);
int	handle_admin_logins(struct req *);
int	handle_admin_login(struct req *);
int	handle_admin_keys(struct req *);
int	handle_admin_key(struct req *);
int	handle_metrics(struct req *);
int	handle_admin_page(struct req *);
int	handle_admin_js(struct req *);
int	handle_admin_css(struct req *);

#endif
