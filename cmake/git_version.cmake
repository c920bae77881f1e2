# Writes DST from SRC with @POLYMOE_GIT_COMMIT@ set to the current commit of SOURCE_DIR (or
# "unknown" outside a git checkout), with "+dirty" appended when tracked files differ from that
# commit (a benchmark line then says its code is not exactly the commit it names). Run at every
# build by the polymoe_version target; configure_file leaves DST untouched when the value has not
# changed, so nothing recompiles.
execute_process(COMMAND git rev-parse --short=12 HEAD WORKING_DIRECTORY ${SOURCE_DIR}
                OUTPUT_VARIABLE POLYMOE_GIT_COMMIT OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT POLYMOE_GIT_COMMIT)
  set(POLYMOE_GIT_COMMIT "unknown")
else()
  execute_process(COMMAND git status --porcelain --untracked-files=no WORKING_DIRECTORY ${SOURCE_DIR}
                  OUTPUT_VARIABLE POLYMOE_GIT_STATUS OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(POLYMOE_GIT_STATUS)
    string(APPEND POLYMOE_GIT_COMMIT "+dirty")
  endif()
endif()
configure_file(${SRC} ${DST} @ONLY)
