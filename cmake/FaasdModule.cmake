# faasd_add_module(<name> SOURCES ... [PUBLIC_DEPS ...] [PRIVATE_DEPS ...])
#
# Defines the static library faasd_<name> (alias faasd::<name>) with the public
# include directory include/ and the shared warning options. Core modules must
# only depend on other core modules, Boost.JSON and the standard library.
function(faasd_add_module name)
  cmake_parse_arguments(ARG "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(faasd_${name} STATIC ${ARG_SOURCES})
  add_library(faasd::${name} ALIAS faasd_${name})
  target_include_directories(faasd_${name} PUBLIC "${PROJECT_SOURCE_DIR}/include"
                                           PRIVATE "${CMAKE_CURRENT_SOURCE_DIR}")
  target_link_libraries(faasd_${name} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE faasd_options ${ARG_PRIVATE_DEPS})
  set_property(GLOBAL APPEND PROPERTY FAASD_MODULE_TARGETS faasd_${name})
endfunction()

# Every module registers itself so that test executables can link them all.
function(faasd_register_module target)
  set_property(GLOBAL APPEND PROPERTY FAASD_MODULE_TARGETS ${target})
endfunction()
