#pragma once
// Private helpers around libgit2: init once, owning handles, failure capture.
// Everything here runs on a pool thread (git_error_last() is thread-local).

#include <faasd/git/error.hpp>

#include <git2.h>
#include <git2/sys/repository.h>

#include <memory>
#include <string>

namespace faasd::git::detail {

/// git_libgit2_init exactly once per process (never shut down: other modules
/// and threads may still use libgit2 during static destruction).
void ensure_libgit2();

template <class T, void (*Free)(T*)>
struct git_deleter {
    void operator()(T* p) const noexcept { Free(p); }
};
template <class T, void (*Free)(T*)>
using git_handle = std::unique_ptr<T, git_deleter<T, Free>>;

using repository_ptr = git_handle<git_repository, git_repository_free>;
using remote_ptr = git_handle<git_remote, git_remote_free>;
using index_ptr = git_handle<git_index, git_index_free>;
using object_ptr = git_handle<git_object, git_object_free>;
using reference_ptr = git_handle<git_reference, git_reference_free>;
using commit_ptr = git_handle<git_commit, git_commit_free>;

/// The failure of the call that just returned `code`, read from git_error_last().
inline libgit2_failure last_failure(int code) {
    const git_error* e = git_error_last();
    libgit2_failure f;
    f.code = code;
    f.klass = e ? e->klass : 0;
    f.message = e && e->message ? e->message : "libgit2 error " + std::to_string(code);
    return f;
}

}  // namespace faasd::git::detail
