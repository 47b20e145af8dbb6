# 64-bit ARM (aarch64): cmake -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-arm64.cmake
# (scripts/test-arm.sh; what it needs: scripts/deps.sh arm).
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(SL_CROSS_ARCH arm64)
set(SL_CROSS_TRIPLET aarch64-linux-gnu)
set(SL_CROSS_QEMU qemu-aarch64)
include(${CMAKE_CURRENT_LIST_DIR}/toolchain-cross.cmake)
