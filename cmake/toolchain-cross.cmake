# What the ARM toolchain files share: Debian's cross compiler for
# SL_CROSS_TRIPLET, the multiarch libraries scripts/deps.sh arm installed
# for SL_CROSS_ARCH, and the packages it unpacked under build-cross/ARCH
# (libevent's headers and pkg-config files). Programs the build runs, ctest
# among them, run under SL_CROSS_QEMU (qemu-user).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_C_COMPILER ${SL_CROSS_TRIPLET}-gcc)
set(CMAKE_LIBRARY_ARCHITECTURE ${SL_CROSS_TRIPLET})
set(CMAKE_CROSSCOMPILING_EMULATOR ${SL_CROSS_QEMU})
get_filename_component(SL_CROSS_UNPACKED
  ${CMAKE_CURRENT_LIST_DIR}/../build-cross/${SL_CROSS_ARCH} ABSOLUTE)
set(ENV{PKG_CONFIG_LIBDIR}
  "${SL_CROSS_UNPACKED}/usr/lib/${SL_CROSS_TRIPLET}/pkgconfig:/usr/lib/${SL_CROSS_TRIPLET}/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
# Libraries and headers of the target only; the build's own tools are the host's.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
