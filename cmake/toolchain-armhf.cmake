# 32-bit ARM, hard float (ARMv7): cmake -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-armhf.cmake
# (scripts/test-arm.sh; what it needs: scripts/deps.sh arm).
set(CMAKE_SYSTEM_PROCESSOR arm)
set(SL_CROSS_ARCH armhf)
set(SL_CROSS_TRIPLET arm-linux-gnueabihf)
set(SL_CROSS_QEMU qemu-arm)
include(${CMAKE_CURRENT_LIST_DIR}/toolchain-cross.cmake)
