#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>

#include "common/check.h"
#include "mlprt/builder.h"

namespace mlprt {

Status write_file_atomic(const std::filesystem::path& path, std::span<const uint8_t> bytes) {
  std::random_device entropy;
  std::filesystem::path temp = path;
  temp += ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(entropy());
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    return make_error(StatusCode::kIoError, "cannot write '", path.string(), "': ",
                      std::strerror(errno));
  }
  size_t written = 0;
  while (written < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(temp.c_str());
      return make_error(StatusCode::kIoError, "cannot write '", path.string(), "': ",
                        std::strerror(err));
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int err = errno;
    ::unlink(temp.c_str());
    return make_error(StatusCode::kIoError, "cannot write '", path.string(), "': ",
                      std::strerror(err));
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(temp.c_str());
    return make_error(StatusCode::kIoError, "cannot move the new file into place at '",
                      path.string(), "': ", std::strerror(err));
  }
  return Status::ok();
}

}  // namespace mlprt
