/*
 * crucible/crucible.h - the whole plugin SDK. A plugin needs nothing else:
 *
 *     #include <crucible/crucible.h>
 *     cc -shared -fPIC -fvisibility=hidden $(pkg-config --cflags crucible-sdk)
 */
#ifndef CRUCIBLE_CRUCIBLE_H
#define CRUCIBLE_CRUCIBLE_H

#include <crucible/abi.h>
#include <crucible/host.h>
#include <crucible/ir.h>
#include <crucible/frontend.h>
#include <crucible/target.h>
#include <crucible/planner.h>
#include <crucible/tokenizer.h>

#endif
