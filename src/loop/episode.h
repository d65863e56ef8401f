/* episode.h - one source's episode: the state machine between a run and its model calls.
 *
 * An episode plays rounds on one source until an example is kept or the rounds are
 * spent. It never blocks and never talks to the network or the store: it asks its
 * environment (struct ep_env, implemented by the run, or by a test) to submit model
 * calls and to record finished rounds, and the environment hands each call's outcome
 * back through ep_deliver(). How a round proceeds (orchestrator or not, what a failed
 * check means, which filter keeps an example) is the method's business (method.h);
 * this interface is the same for every method.
 *
 * States. An episode is in one state at a time; the state names the step whose calls
 * are in flight:
 *
 *   EP_IDLE -> ORCHESTRATE -> CHALLENGE (-> REPAIR) -> QUALITY -> WEAK -> STRONG (-> FILTER)
 *      ^                                                                        |
 *      +---------------------- next round (record written) <-------------------+
 *   (with several challengers per round, CHALLENGE and QUALITY run for each candidate at
 *   once as one SCREEN step, and the survivors go through WEAK -> STRONG one at a time)
 *   and, from any step, FINISHED (the last round is recorded) or PARKED (set aside
 *   unfinished: the run is stopping, a call failed for infrastructure reasons, or the
 *   store refused a record; a later run resumes the source).
 *
 * Life cycle and ownership. The caller (the run) creates an episode with ep_new(),
 * calls ep_start() once, then ep_deliver() once for every call the episode submitted.
 * ep_start() and ep_deliver() return the episode's state; once it is EP_FINISHED or
 * EP_PARKED (ep_ended()) the episode has no call outstanding and will submit none, and the caller
 * frees it with ep_free(). An episode never frees itself. ep_free() on a running
 * episode is allowed only after the caller has dropped its outstanding calls (e.g. at
 * the end of a run cut short): their outcomes must then never be delivered.
 *
 * Not thread-safe: one thread drives an episode (the run's event loop).
 */
#ifndef AD_EPISODE_H
#define AD_EPISODE_H

#include <jansson.h>
#include <stdint.h>

#include "eval/baseline.h"
#include "eval/candidate.h"
#include "prompt/template.h"
#include "recipe/recipe.h"
#include "source/source.h"

struct episode;
struct method_ops;

enum ep_state {
  EP_IDLE = 0,    /* between rounds */
  EP_ORCHESTRATE, /* the orchestrator writes instructions */
  EP_CHALLENGE,   /* the challenger writes a candidate */
  EP_REPAIR,      /* the challenger's repair turn (its first reply did not parse) */
  EP_QUALITY,     /* the quality verifier */
  EP_WEAK,        /* weak solver samples, each judged */
  EP_STRONG,      /* strong solver samples, each judged */
  EP_FILTER,      /* a method's extra samples (cot-self-instruct's filter), each judged */
  EP_FINISHED,    /* the last round is recorded */
  EP_PARKED,      /* set aside unfinished */
  EP_EXTRACT,     /* the extractor reads the source (first stage of a two-stage challenger) */
  EP_LOOP_JUDGE,  /* the loop judge's accept/improve verdict on an evaluated candidate */
  EP_SCREEN       /* several challengers at once, each candidate checked and quality-verified */
};
/* "idle", "orchestrate", ... for logs and tests. */
const char *ep_state_name(enum ep_state s);

/* 1 for EP_FINISHED and EP_PARKED: the episode has no call outstanding, will submit
 * none, and may be freed. */
static inline int ep_ended(enum ep_state s) { return s == EP_FINISHED || s == EP_PARKED; }

/* A model call the episode asks for. Everything is borrowed for the duration of
 * submit(); body is taken by submit() whatever it returns. */
struct ep_call {
  enum recipe_role_id role; /* whose endpoint, model and prices */
  const char *label;        /* the call's role in the store: "weak", "judge_strong", ... */
  int sample;               /* sample index within its phase (0 for single calls) */
  int tag;                  /* hand back to ep_deliver() unchanged */
  const char *source_id;    /* the episode's source */
  int round;                /* the episode's round (1-based) */
  json_t *body;             /* the Chat Completions request */
};

/* A call's outcome. Strings are borrowed for the duration of ep_deliver(). */
struct ep_reply {
  int ok;                    /* 1: content is the model's reply */
  const char *content;       /* reply content ("" when none) */
  const json_t *tool_calls;  /* when ok: the reply's tool_calls array as sent (untrusted), or
                                NULL */
  const char *error;         /* when !ok and !set_aside: a one-line diagnosis, recorded as the
                          candidate's reason ("error:<role>") */
  int set_aside;             /* the call was not answered and must not count against the source:
                          the run is stopping, or it failed for infrastructure reasons */
  const char *finish_reason; /* when ok: the server's finish_reason ("stop", "length", ...),
                                NULL when it sent none */
  int64_t completion_tokens; /* when ok: the reply's tokens as the server counted them */
};

/* A finished round, handed to the environment to record. Borrowed for the call. */
struct ep_round_end {
  const char *source_id;
  int round;
  const char *reason;        /* NULL: the candidate passed the acceptance gate */
  const json_t *cand_record; /* the candidate's full record */
  const char *example_id;    /* "<source>-<n>" when an example is kept, else NULL */
  const json_t *example;     /* the kept example, else NULL */
  int finished;              /* 1: the episode ends with this round */
  int accepted;              /* examples kept for this source so far (this one included) */
  int index;                 /* the candidate's index within its round (several challengers per
                                round; 0 otherwise) */
};

/* The environment: the episode's only way out. `data` is passed back to every hook. */
struct ep_env {
  void *data;
  /* Submit a call. 0: its outcome will be delivered later, exactly once, through
   * ep_deliver() (never from inside submit); else a negative AD_E* code and it never
   * will (the run is stopping, a budget is spent, or the store failed). */
  int (*submit)(void *data, struct episode *ep, const struct ep_call *call);
  /* The sampling seed of (source, round, label, sample). */
  int64_t (*seed)(void *data, const char *source_id, int round, const char *label, int sample);
  /* 1 when the role's endpoint may be sent response_format (it has not refused it). */
  int (*schema_ok)(void *data, enum recipe_role_id role);
  /* Record a finished round (with the source's end when e->finished), atomically.
   * 0, or a negative AD_E* code: the episode is then parked. */
  int (*record)(void *data, const struct ep_round_end *e);
  /* 1 when the run is stopping: the episode records the round in hand and parks. */
  int (*stopping)(void *data);
  /* Optional (may be NULL): told of every reply of a role that must return a shape
   * (challenger, quality, judge; the orchestrator's turns of a conversational method,
   * which must call a tool) once the episode has decided it: usable, or not
   * (after its repair turn, when it had one) with why and the reply itself. The run
   * counts these to stop on a role that keeps failing (docs/loop.md). */
  void (*reply_seen)(void *data, enum recipe_role_id role, int usable, const char *why,
                     const char *reply);
};

/* What every episode of a run shares. Borrowed; must outlive the episodes. */
struct ep_config {
  const struct recipe *rc;
  const struct method_ops *method;
  const struct bl_params *filter;            /* the method's filter settings */
  const struct tpl_prompt *challenger_tpl;   /* NULL: the recipe's challenger prompt; else the
                                              method's own (no system_prompt override) */
  const json_t *prompt_hashes;               /* role -> sha256, copied into every example */
  const struct tpl_prompt *orchestrator_tpl; /* NULL: the recipe's orchestrator prompt; else
                                                the method's own (the agent's, agent.md) */
};

/* A new episode for doc (borrowed; must outlive the episode). Never NULL (allocation
 * failure aborts, see util/mem.h). */
struct episode *ep_new(const struct ep_config *cfg, const struct ep_env *env,
                       const struct src_doc *doc);
/* Before ep_start: the dataset note (recipe analysis:, loop/dnote.h) of checkpoint number
 * checkpoint, copied; it is appended to the orchestrator's requests, and to the challenger's
 * in a round without the orchestrator's instructions (the first, or every round of a method
 * without one); the checkpoint goes into every candidate record. */
void ep_set_note(struct episode *ep, const char *note, int checkpoint);
/* Begin round 1. Returns the state the episode is in afterwards. */
enum ep_state ep_start(struct episode *ep);
/* Hand over the outcome of a call the episode submitted (tag as given in ep_call).
 * Returns the state the episode is in afterwards. */
enum ep_state ep_deliver(struct episode *ep, int tag, const struct ep_reply *reply);
void ep_free(struct episode *ep);

enum ep_state ep_state(const struct episode *ep);
const char *ep_source_id(const struct episode *ep);
/* The source document the episode plays (as given to ep_new). */
const struct src_doc *ep_doc(const struct episode *ep);
int ep_round(const struct episode *ep);
/* Examples kept for this source so far. */
int ep_accepted(const struct episode *ep);

#endif
