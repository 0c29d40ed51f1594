# The trace file format (net_trace.h): its own library, because its writer
# runs a background thread. net/ is below the world seam, so threads are
# allowed here; keeping them out of oc_net keeps them out of everything that
# links oc_net above the seam (the simulator's driver links oc_net, and the
# seam guard in tests/ forbids pthread_create there).
find_package(Threads REQUIRED)
add_library(oc_trace STATIC ${CMAKE_CURRENT_LIST_DIR}/net_trace.c
            ${CMAKE_CURRENT_LIST_DIR}/net_trace_writer.c
            ${CMAKE_CURRENT_LIST_DIR}/net_trace_reader.c
            ${CMAKE_CURRENT_LIST_DIR}/net_record.c)
target_include_directories(oc_trace PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(oc_trace PUBLIC oc_runtime Threads::Threads)
