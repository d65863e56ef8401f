/* world_notes.h - how the sim world's challenger and orchestrator read a dataset note
 * (recipe `analysis:`, docs/analyze.md; docs/sim.md "Dataset notes"), and the sim
 * challenger's favourite question (parameter habit). They read only the message text: the
 * note's "Over-represented question types:" line and its quoted wordings. Called from
 * world.c through small hooks; private to src/sim.
 */
#ifndef AD_SIM_WORLD_NOTES_H
#define AD_SIM_WORLD_NOTES_H

#include "util/buf.h"

#define SIM_NOTES_MAX_TYPES 16
#define SIM_NOTES_TYPE_LEN 64

/* The sim challenger's favourite question: its type and its stock wording (a printf format
 * with one %s, the list of fact names, at the end). */
extern const char *const SIM_HABIT_TYPE;
extern const char *const SIM_HABIT_FMT;

/* 1 when text quotes the stock question at length (the feedback block shows an earlier
 * round's question whole; a note's quote of its first words is shorter): the challenger does
 * not repeat a form that was just judged. */
int sim_habit_asked_before(const char *text);
/* The question types every "Over-represented question types: A (41%); B (22%)." line of
 * text names (the last line's items first), into types; returns how many. */
int sim_notes_overused(const char *text, char types[][SIM_NOTES_TYPE_LEN], int max);
/* 1 when name is among the n types (case-insensitive). */
int sim_notes_listed(char types[][SIM_NOTES_TYPE_LEN], int n, const char *name);
/* 1 when a wording quoted on a "steer away from this wording:" line of text ("FIRST WORDS
 * ..." with the trailing " ..." dropped) begins the text start (case-insensitive). */
int sim_notes_steer_away(const char *text, const char *start);
/* The orchestrator passes the note on: each note line it reads ("- Over-represented question
 * types: ...", "- Near-duplicate questions, steer away from this wording: ...") is appended
 * to out as a sentence of its instructions. 0 or a buf error. */
int sim_notes_relay(const char *text, struct buf *out);

#endif
