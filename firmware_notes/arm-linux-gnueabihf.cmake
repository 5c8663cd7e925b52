# Cross-compile the C core for 32-bit ARM Linux (armhf: ARMv7-A, VFPv3-D16,
# hard-float ABI; Raspberry Pi 2/3/4/5 on a 32-bit OS) with Debian's cross
# toolchain, and run the test binaries under qemu user mode. The twin of
# cmake/aarch64-linux-gnu.cmake; see firmware_notes/cross-compiling.md.
#
#   apt-get install gcc-arm-linux-gnueabihf libc6-dev-armhf-cross qemu-user-static
#   cmake -S . -B build/armhf -DCMAKE_TOOLCHAIN_FILE=firmware_notes/arm-linux-gnueabihf.cmake
#   cmake --build build/armhf && ctest --test-dir build/armhf
#
# Debian's armhf is ARMv7: the binaries do not run on ARMv6 boards (Pi 1, Pi Zero/Zero W).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR arm)

set(HM_CROSS_TRIPLE arm-linux-gnueabihf)
set(HM_CROSS_SYSROOT /usr/${HM_CROSS_TRIPLE})

set(CMAKE_C_COMPILER ${HM_CROSS_TRIPLE}-gcc)
# Only needed if a C++ target is enabled (the Python module is never cross-built here).
find_program(HM_CROSS_CXX ${HM_CROSS_TRIPLE}-g++)
if(HM_CROSS_CXX)
  set(CMAKE_CXX_COMPILER ${HM_CROSS_CXX})
endif()

# Libraries and headers from the cross sysroot only; programs (nm, qemu) from the host.
set(CMAKE_FIND_ROOT_PATH ${HM_CROSS_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# ctest prepends this to every test whose command is a target. -L: where qemu
# finds the armhf dynamic loader and libc.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-arm-static;-L;${HM_CROSS_SYSROOT})
