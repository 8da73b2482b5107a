# The userspace is one static library per folder of userspace/, stacked along
# the path of the data (docs/CONTRIBUTING.md, "Code map"):
#
#   kernel -> aggregate -> monitor -> rules -> events -> actions -> sinks/metrics
#   -> views -> control -> ecosystem -> agent -> cli (and main.cpp)
#
# with the vocabulary every folder shares at the bottom. A layer may use only
# the layers below it, and the build holds it to that twice:
#  - diskwatch_layer() refuses, at configure time, a USES that is not below;
#  - each layer's headers are reachable only through its own include directory
#    (build/layers/<name>/<name> -> userspace/<name>), which a target sees only
#    when it links that layer. An #include that runs up the path is a missing
#    file, a compile error, in a source or in a header (each header is also
#    compiled alone against its layer). tests/layering proves it, checks the
#    target graph of `cmake --graphviz` and the symbols each library takes from
#    the others; scripts/lint refuses a ".." in an include path.

# Bottom to top. The order is the contract; the layering test reads it from here.
set(DISKWATCH_LAYERS
  vocabulary  # the words every folder shares: writer records, drop reasons, errno text, UTF-8, exit codes
  ipc         # unix sockets
  resolve     # /proc, /sys and runtimes: processes, cgroups, mounts, containers
  kernel      # the BPF object: load, attach, read the maps
  aggregate   # counters into per-interval reports
  monitor     # the refresh loop that produces a report
  rules       # the policy and its rules over reports
  events      # the event records (docs/events.md)
  actions     # throttle, kill, protect: the enforcer
  sinks       # where events go: stdout, files, sockets, syslog, journald
  metrics     # Prometheus
  views       # top: text, JSON, the live view
  recorder    # the flight recorder: its store, replay and explain
  control     # the control socket, its client and the agent feed
  ecosystem   # what the agent runs beside its loop: extra sinks, metrics, control
  agent       # the daemon
  cli         # one file per command
  CACHE INTERNAL "userspace layers, bottom to top")

# diskwatch_layer(NAME SOURCES <files> [USES <layers below>] [PUBLIC_LIBS ...] [PRIVATE_LIBS ...])
function(diskwatch_layer name)
  cmake_parse_arguments(LAYER "" "" "SOURCES;USES;PUBLIC_LIBS;PRIVATE_LIBS" ${ARGN})
  list(FIND DISKWATCH_LAYERS ${name} own)
  if(own EQUAL -1)
    message(FATAL_ERROR "diskwatch_layer(${name}): not in DISKWATCH_LAYERS (cmake/Layers.cmake)")
  endif()
  foreach(used IN LISTS LAYER_USES)
    list(FIND DISKWATCH_LAYERS ${used} below)
    if(below EQUAL -1 OR NOT below LESS own)
      message(FATAL_ERROR "diskwatch_layer(${name}) USES ${used}, which is not below it in DISKWATCH_LAYERS:"
                          " a layer uses only the layers under it (cmake/Layers.cmake)")
    endif()
  endforeach()

  # userspace/<name> seen as <name>/ from this directory only.
  set(include_root ${CMAKE_BINARY_DIR}/layers/${name})
  file(MAKE_DIRECTORY ${include_root})
  file(CREATE_LINK ${PROJECT_SOURCE_DIR}/userspace/${name} ${include_root}/${name} SYMBOLIC)

  add_library(diskwatch_${name} STATIC ${LAYER_SOURCES})
  target_include_directories(diskwatch_${name} PUBLIC ${include_root})
  # Every header of the folder is also compiled alone against this layer's
  # view (target diskwatch_<name>_verify_interface_header_sets): a header that
  # no source of its own layer includes cannot include up the path unseen.
  file(GLOB headers CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/userspace/${name}/*.h)
  list(TRANSFORM headers REPLACE "^${PROJECT_SOURCE_DIR}/userspace/${name}/" "${include_root}/${name}/")
  target_sources(diskwatch_${name} PUBLIC FILE_SET HEADERS BASE_DIRS ${include_root} FILES ${headers})
  set_target_properties(diskwatch_${name} PROPERTIES VERIFY_INTERFACE_HEADER_SETS ON)
  target_compile_options(diskwatch_${name} PRIVATE -Wall -Wextra)
  list(TRANSFORM LAYER_USES PREPEND diskwatch_ OUTPUT_VARIABLE used_targets)
  target_link_libraries(diskwatch_${name} PUBLIC ${used_targets} ${LAYER_PUBLIC_LIBS} PRIVATE ${LAYER_PRIVATE_LIBS})
endfunction()
