// A forked child for tests that must change the process itself (seccomp,
// capabilities) without changing the test runner: the child's stderr goes
// to a pipe the parent reads to the end, then the parent reaps it.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include <catch2/catch.hpp>

namespace kairos::test {

struct ChildExit {
	pid_t pid = -1;
	int exit_code = -1;  // -1: the child did not exit (a signal killed it)
	std::string stderr_text;
};

// Runs body() in a forked child with stderr on the pipe; body must end the
// child with _exit (nothing of the test runner's may run there). Fails the
// test case if fork or pipe fail.
template <typename Body>
ChildExit run_in_child(Body body)
{
	int pipe_fds[2];
	REQUIRE(pipe(pipe_fds) == 0);
	pid_t child = fork();
	REQUIRE(child >= 0);
	if (child == 0) {
		close(pipe_fds[0]);
		dup2(pipe_fds[1], STDERR_FILENO);
		body();
		_exit(127);  // body returned: a bug in the test
	}
	close(pipe_fds[1]);
	ChildExit result;
	result.pid = child;
	char buffer[256];
	for (ssize_t n; (n = read(pipe_fds[0], buffer, sizeof buffer)) > 0;)
		result.stderr_text.append(buffer, static_cast<size_t>(n));
	close(pipe_fds[0]);
	int status = 0;
	REQUIRE(waitpid(child, &status, 0) == child);
	if (WIFEXITED(status))
		result.exit_code = WEXITSTATUS(status);
	return result;
}

}  // namespace kairos::test
