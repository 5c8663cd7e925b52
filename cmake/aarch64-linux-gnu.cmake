# Cross-compile for 64-bit ARM Linux (Raspberry Pi 3/4/5 on a 64-bit OS) with
# Debian's cross toolchain, and run the test binaries under qemu user mode:
#
#   apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static
#   cmake -S . -B build/aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
#   cmake --build build/aarch64 && ctest --test-dir build/aarch64
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(HM_CROSS_TRIPLE aarch64-linux-gnu)
set(HM_CROSS_SYSROOT /usr/${HM_CROSS_TRIPLE})

set(CMAKE_C_COMPILER ${HM_CROSS_TRIPLE}-gcc)
# Only needed if a C++ target is enabled: the Python module, cross-built by `make wheel-arm64`.
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

# ctest prepends this to every test whose command is a target, so the aarch64
# binaries run on the x86_64 host. -L: where qemu finds the aarch64 dynamic loader and libc.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64-static;-L;${HM_CROSS_SYSROOT})
