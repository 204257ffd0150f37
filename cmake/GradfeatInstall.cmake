# Install like a library (issue 22 item 2): `cmake --install build [--prefix P]` puts in place
#   bin/gradfeat                              the CLI (linked statically against libgradfeat)
#   share/man/man1/gradfeat.1.gz              the man page    } both written by the CLI from its option
#   share/bash-completion/completions/gradfeat  completion    } tables at build time (CMakeLists.txt)
#   lib/<multiarch>/libgradfeat.so.0.1.0      the shared library, soname libgradfeat.so.0 (+ libgradfeat.so)
#   lib/<multiarch>/libgradfeat.a             the static library
#   include/gradfeat*.h                       the public headers (no OpenCL header needed by users)
#   lib/<multiarch>/pkgconfig/gradfeat.pc     pkg-config (`--static` adds the private dependencies)
#   lib/<multiarch>/cmake/gradfeat/           find_package(gradfeat): gradfeat::gradfeat_shared, gradfeat::gradfeat
# and CPack makes a .deb (`cpack -G DEB` in the build folder) whose dependencies dpkg-shlibdeps derives
# from the binaries. tests/cli_install.sh builds a tiny program against the installed library both ways.
# Debian multiarch: the libraries, gradfeat.pc and the CMake package go to lib/<triplet> (lib/x86_64-linux-gnu)
# whatever the prefix, so `cmake --install` and the .deb agree. GNUInstallDirs alone picks lib/<triplet> only
# when CMAKE_INSTALL_PREFIX is /usr at configure time, and CPack packages a build configured for /usr/local.
# Both /usr/lib/<triplet> and /usr/local/lib/<triplet> are on Debian's loader and pkg-config paths.
# -DGF_MULTIARCH=OFF (or any -DCMAKE_INSTALL_LIBDIR other than lib) keeps plain lib.
option(GF_MULTIARCH "Debian: install libraries into lib/<multiarch triplet>" ON)
if(GF_MULTIARCH AND CMAKE_LIBRARY_ARCHITECTURE AND EXISTS /etc/debian_version
   AND (NOT DEFINED CMAKE_INSTALL_LIBDIR OR CMAKE_INSTALL_LIBDIR STREQUAL "lib"))
  set(CMAKE_INSTALL_LIBDIR "lib/${CMAKE_LIBRARY_ARCHITECTURE}" CACHE PATH "Object code libraries" FORCE)
endif()
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

option(GF_SHARED "Also build the shared library libgradfeat.so (installed with the static one)" ON)

# the static library's include directory differs between the build tree and an installation
set_property(TARGET gradfeat PROPERTY INTERFACE_INCLUDE_DIRECTORIES
             "$<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>" "$<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>")
set(GF_INSTALL_TARGETS gradfeat)
if(GF_SHARED)
  # the same objects as the static library (CMakeLists.txt: gradfeat_objects, compiled once with -fPIC)
  add_library(gradfeat_shared SHARED $<TARGET_OBJECTS:gradfeat_objects>)
  set_target_properties(gradfeat_shared PROPERTIES OUTPUT_NAME gradfeat VERSION ${PROJECT_VERSION}
                        SOVERSION ${PROJECT_VERSION_MAJOR})
  target_include_directories(gradfeat_shared PUBLIC "$<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>"
                             "$<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>")
  # the dependencies stay private: a program using libgradfeat.so links only -lgradfeat
  target_link_libraries(gradfeat_shared PRIVATE ${GF_LIB_DEPS})
  list(APPEND GF_INSTALL_TARGETS gradfeat_shared)
endif()

install(TARGETS gradfeat_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/gradfeat.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/gradfeat.bash-completion
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME gradfeat)
install(TARGETS ${GF_INSTALL_TARGETS} EXPORT gradfeatTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} NAMELINK_COMPONENT Unspecified
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
file(GLOB GF_PUBLIC_HEADERS ${CMAKE_CURRENT_SOURCE_DIR}/include/*.h)
install(FILES ${GF_PUBLIC_HEADERS} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

set(GF_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/gradfeat)
install(EXPORT gradfeatTargets NAMESPACE gradfeat:: DESTINATION ${GF_CMAKE_DIR})
configure_package_config_file(${CMAKE_CURRENT_SOURCE_DIR}/cmake/gradfeatConfig.cmake.in
                              ${CMAKE_CURRENT_BINARY_DIR}/gradfeatConfig.cmake INSTALL_DESTINATION ${GF_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/gradfeatConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/gradfeatConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/gradfeatConfigVersion.cmake
        DESTINATION ${GF_CMAKE_DIR})

# pkg-config: paths relative to the .pc file, so the installation can be moved (dpkg -x, --prefix)
set(GF_PC_LIBS_PRIVATE "-lclblast -lcjson -lstb -lz -lOpenCL -lpthread -lm")
if(BLAS_FOUND AND CBLAS_INCLUDE_DIR)
  string(APPEND GF_PC_LIBS_PRIVATE " -lopenblas")
endif()
if(GF_MPI)
  string(APPEND GF_PC_LIBS_PRIVATE " -lmpi")
endif()
if(GF_HAVE_ONNX)   # native ONNX loading (CMakeLists.txt)
  string(APPEND GF_PC_LIBS_PRIVATE " -lprotobuf-c")
endif()
file(RELATIVE_PATH GF_PC_TO_PREFIX ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
configure_file(${CMAKE_CURRENT_SOURCE_DIR}/cmake/gradfeat.pc.in ${CMAKE_CURRENT_BINARY_DIR}/gradfeat.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/gradfeat.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# .deb
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME gradfeat)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "gradfeat maintainers <gradfeat@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Adapt pre-trained CNNs with gradients as features, on any OpenCL device")
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)           # Depends: from the ELF files (libOpenCL, libclblast, ...)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)     # a shlibs file for libgradfeat.so.0; with the library in
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")   # /usr/lib/<triplet>, postinst/postrm run ldconfig
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "pocl-opencl-icd | opencl-icd")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
include(CPack)
