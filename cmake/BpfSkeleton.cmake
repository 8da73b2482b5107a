# bpf_skeleton(<name> <source.bpf.c>...)
#
# Compiles each CO-RE BPF source with clang (-g -O2 -target bpf) against the
# checked-in vmlinux.h (never the build host's BTF), links them into one object
# with `bpftool gen object`, generates its libbpf skeleton with `bpftool gen
# skeleton`, and exposes it as the INTERFACE target <name>_skel whose include
# directory holds <name>.skel.h.
find_program(BPF_CLANG NAMES clang clang-16 clang-15 clang-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)

set(BPF_VMLINUX_DIR ${PROJECT_SOURCE_DIR}/bpf/vmlinux/x86)
set(BPF_TARGET_ARCH x86)

function(bpf_skeleton name)
  set(sources ${ARGN})
  set(object ${CMAKE_CURRENT_BINARY_DIR}/bpf/${name}.bpf.o)
  set(skeleton ${CMAKE_CURRENT_BINARY_DIR}/bpf/${name}.skel.h)
  file(GLOB bpf_headers CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/bpf/*.bpf.h)
  set(parts)
  foreach(source ${sources})
    get_filename_component(part ${source} NAME_WE)
    set(part_object ${CMAKE_CURRENT_BINARY_DIR}/bpf/${name}.parts/${part}.bpf.o)
    add_custom_command(
      OUTPUT ${part_object}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/bpf/${name}.parts
      COMMAND ${BPF_CLANG} -g -O2 -target bpf -mcpu=v3 -Wall -Werror
              -D__TARGET_ARCH_${BPF_TARGET_ARCH}
              -I${BPF_VMLINUX_DIR} -I${PROJECT_SOURCE_DIR}/include -I${PROJECT_SOURCE_DIR}/bpf
              -c ${source} -o ${part_object}
      DEPENDS ${source} ${bpf_headers} ${PROJECT_SOURCE_DIR}/include/diskwatch/abi.h
      COMMENT "BPF ${name}: clang -target bpf ${part}"
      VERBATIM)
    list(APPEND parts ${part_object})
  endforeach()
  # One object from the files (maps and settings are __weak in bpf/maps.bpf.h,
  # so each is kept once; global functions are resolved across files).
  add_custom_command(
    OUTPUT ${object}
    COMMAND ${BPFTOOL} gen object ${object} ${parts}
    DEPENDS ${parts}
    COMMENT "BPF ${name}: bpftool gen object"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skeleton}
    COMMAND ${BPFTOOL} gen skeleton ${object} name ${name}_bpf > ${skeleton}
    DEPENDS ${object}
    COMMENT "BPF ${name}: bpftool gen skeleton"
    VERBATIM)
  add_custom_target(${name}_skel_gen DEPENDS ${skeleton})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  target_include_directories(${name}_skel INTERFACE ${CMAKE_CURRENT_BINARY_DIR}/bpf)
endfunction()
