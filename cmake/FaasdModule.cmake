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

# faasd_check_core(<target>...)
#
# Fails the configure when one of the given core targets links, directly or
# through the link interfaces of what it links, a shell module or a library
# the core must not depend on: Asio and Beast (faasd_asio, faasd_http),
# librdkafka, libgit2, OpenSSL, or the shell modules built on them. Header-only
# Boost (faasd_boost) is allowed: it is how Boost.JSON reaches the core.
function(faasd_check_core)
  set(forbidden_targets faasd_asio faasd_http faasd_kafka faasd_git faasd_crypto faasd_sandbox faasd_runtime
                        faasd_config faasd_frontend faasd_worker
                        PkgConfig::RDKAFKA PkgConfig::LIBGIT2 OpenSSL::SSL OpenSSL::Crypto)
  foreach(root IN LISTS ARGN)
    if(NOT TARGET ${root})
      message(FATAL_ERROR "faasd_check_core: ${root} is not a target")
    endif()
    set(seen "")
    set(queue ${root})
    string(MAKE_C_IDENTIFIER "${root}" key)
    set(path_${key} "${root}")
    while(queue)
      list(POP_FRONT queue item)
      if(item IN_LIST seen)
        continue()
      endif()
      list(APPEND seen ${item})
      string(MAKE_C_IDENTIFIER "${item}" item_key)
      set(name ${item})
      if(TARGET ${item})
        get_target_property(aliased ${item} ALIASED_TARGET)
        if(aliased)
          set(name ${aliased})
        endif()
      endif()
      if(name IN_LIST forbidden_targets OR name MATCHES "(^|/|lib)(rdkafka|git2|ssl|crypto)[.-]")
        message(FATAL_ERROR "core target ${root} must not link ${name} (via ${path_${item_key}}); "
                            "keep it free of Asio, Beast, librdkafka, libgit2 and OpenSSL")
      endif()
      if(NOT TARGET ${name})
        continue()
      endif()
      set(deps "")
      get_target_property(type ${name} TYPE)
      if(NOT type STREQUAL "INTERFACE_LIBRARY")
        get_target_property(direct ${name} LINK_LIBRARIES)
        if(direct)
          list(APPEND deps ${direct})
        endif()
      endif()
      get_target_property(iface ${name} INTERFACE_LINK_LIBRARIES)
      if(iface)
        list(APPEND deps ${iface})
      endif()
      foreach(dep IN LISTS deps)
        # $<LINK_ONLY:x> and similar wrappers: look at what they wrap.
        string(REGEX REPLACE "^\\$<[A-Z_]+:(.*)>$" "\\1" dep "${dep}")
        if(dep MATCHES "^\\$<" OR dep STREQUAL "")
          continue()
        endif()
        if(NOT dep IN_LIST seen)
          list(APPEND queue ${dep})
          string(MAKE_C_IDENTIFIER "${dep}" dep_key)
          set(path_${dep_key} "${path_${item_key}} -> ${dep}")
        endif()
      endforeach()
    endwhile()
  endforeach()
endfunction()
