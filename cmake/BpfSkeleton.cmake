# bpf_skeleton(<name> <source.bpf.c>)
#
# Compiles one CO-RE BPF program with clang (-g -O2 -target bpf) against the
# checked-in vmlinux.h (never the build host's BTF), generates its libbpf
# skeleton with `bpftool gen skeleton`, and exposes it as the INTERFACE target
# <name>_skel whose include directory holds <name>.skel.h.
find_program(BPF_CLANG NAMES clang clang-16 clang-15 clang-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)

set(BPF_VMLINUX_DIR ${PROJECT_SOURCE_DIR}/bpf/vmlinux/x86)
set(BPF_TARGET_ARCH x86)

function(bpf_skeleton name source)
  set(object ${CMAKE_CURRENT_BINARY_DIR}/bpf/${name}.bpf.o)
  set(skeleton ${CMAKE_CURRENT_BINARY_DIR}/bpf/${name}.skel.h)
  file(GLOB bpf_headers CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/bpf/*.bpf.h)
  add_custom_command(
    OUTPUT ${object}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/bpf
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -mcpu=v3 -Wall -Werror
            -D__TARGET_ARCH_${BPF_TARGET_ARCH}
            -I${BPF_VMLINUX_DIR} -I${PROJECT_SOURCE_DIR}/include -I${PROJECT_SOURCE_DIR}/bpf
            -c ${source} -o ${object}
    DEPENDS ${source} ${bpf_headers} ${PROJECT_SOURCE_DIR}/include/diskwatch/abi.h
    COMMENT "BPF ${name}: clang -target bpf"
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
