/*
 * fuzz_sse.c: the relay's SSE path: upstream bytes arrive in pieces of any
 * size; the first ones must look like an event stream (upcheck_sse_start);
 * they are assembled into events (bounded by SSE_EVENT_MAX), every "data:"
 * line with "usage" is parsed and its numbers checked (upcheck_usage), and
 * each event is relayed or dropped (a usage-only chunk the client did not
 * ask for).  relay.c's static functions are reached by including it,
 * lighttpd's src/t way.
 *
 * Input: byte 0 bit 0 = the client asked for include_usage; then pieces,
 * each one length byte and that many bytes.
 */
#include "../../app/relay.c"

static int
null_write(void *ctx, const void *p, size_t n)
{
	size_t	*total = ctx;

	(void)p;
	*total += n;
	return 0;
}

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct cfg	 cfg;
	static struct server	 srv;
	struct relay		 rl;
	struct req		 r;
	size_t			 i = 0, n, total = 0;

	if (srv.cfg == NULL) {
		cfg.sse_keepalive_seconds = 15;
		srv.cfg = &cfg;
		log_open("error", "/dev/null");
	}
	memset(&r, 0, sizeof(r));
	r.srv = &srv;
	r.sink.write = null_write;
	r.sink.ctx = &total;
	memset(&rl, 0, sizeof(rl));
	rl.r = &r;
	rl.kind = RELAY_CHAT;
	rl.stream = 1;
	rl.wants.stream = 1;
	if (size > 0) {
		/* Byte 0: did the client ask for the usage chunk? */
		rl.wants.include_usage = data[0] & 1;
		i = 1;
	}
	while (i < size) {
		n = data[i++];
		if (n > size - i)
			n = size - i;
		if (on_data(&rl, (const char *)data + i, n) != 0) {
			if (rl.bad_answer[0] != '\0' && !rl.data_sent)
				break;	/* refused before a byte went out */
			abort();	/* the sink never fails */
		}
		i += n;
	}
	if (rl.evlen > 0 && rl.bad_answer[0] == '\0')
		event_done(&rl);	/* a last event without its blank line */
	if (rl.prompt_tokens < 0 || rl.prompt_tokens > UPCHECK_TOKENS_MAX ||
	    rl.completion_tokens < 0 ||
	    rl.completion_tokens > UPCHECK_TOKENS_MAX)
		abort();	/* an unbelievable number got counted */
	free(rl.ev);
	return 0;
}
