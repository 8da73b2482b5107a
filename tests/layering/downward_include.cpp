// The control for upward_include.cpp: the same target setup, an include that
// runs down the data path (the aggregator uses the resolvers and the
// vocabulary). It must compile, or the expected failure proves nothing.
#include "resolve/processes.h"
#include "vocabulary/writer_records.h"

int layering_downward_include_compiles()
{
    return static_cast<int>(sizeof(diskwatch::WriterKey));
}
