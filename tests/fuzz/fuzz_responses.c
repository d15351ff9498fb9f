/*
 * fuzz_responses.c: the OpenAI Responses API translator at the edge
 * (app/xlate_responses.c, app/edge.c): see xlate_fuzz.h.
 */
#define XLATE_FUZZ_KIND	XLATE_RESPONSES
#include "xlate_fuzz.h"
