// Built against the aggregate layer only (tests/CMakeLists.txt, target
// layering_upward_include): the enforcer sits above the aggregator on the data
// path, so this include must not be found. The test passes when the compiler
// says exactly that, and fails if the file compiles.
#include "actions/enforcer.h"
