/* version.h - the program's version, set by the Makefile from VERSION and git. */
#ifndef AD_VERSION_H
#define AD_VERSION_H

#ifndef AD_VERSION
#define AD_VERSION "0.0.0"
#endif
#ifndef AD_GITREV
#define AD_GITREV "unknown"
#endif
#define AD_GITREV_STR AD_GITREV

static inline const char *ad_version(void) { return AD_VERSION; }

#endif
