include(CMakePackageConfigHelpers)

install(TARGETS mlprt EXPORT mlprtTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY include/mlprt DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT mlprtTargets NAMESPACE mlprt:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/mlprt)
configure_package_config_file(cmake/mlprtConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/mlprtConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/mlprt)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/mlprtConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/mlprtConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/mlprtConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/mlprt)
if(MLPRT_BUILD_TOOLS)
  install(TARGETS mlprt_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
