// Result<T>: a value or an Error, the return type of every fallible call.
//
// C++20 has no std::expected; this is the small subset we need. Errors are
// sentences with context ("KVM_SET_USER_MEMORY_REGION slot 0 (256 MiB at
// 0x0): Invalid argument"), never codes the caller must look up.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace kairos {

struct Error {
	std::string message;
};

template <typename T>
class [[nodiscard]] Result {
public:
	Result(T value) : state_(std::move(value)) {}
	Result(Error error) : state_(std::move(error)) {}

	bool ok() const { return std::holds_alternative<T>(state_); }
	explicit operator bool() const { return ok(); }

	T &value() & { return std::get<T>(state_); }
	const T &value() const & { return std::get<T>(state_); }
	T &&value() && { return std::get<T>(std::move(state_)); }
	T &operator*() & { return value(); }
	T *operator->() { return &value(); }
	const T *operator->() const { return &value(); }

	const Error &error() const { return std::get<Error>(state_); }

private:
	std::variant<T, Error> state_;
};

// Result<void>: success carries nothing.
template <>
class [[nodiscard]] Result<void> {
public:
	Result() = default;
	Result(Error error) : error_(std::move(error)), failed_(true) {}

	bool ok() const { return !failed_; }
	explicit operator bool() const { return ok(); }
	const Error &error() const { return error_; }

private:
	Error error_;
	bool failed_ = false;
};

using Status = Result<void>;

}  // namespace kairos

// Propagate a failed Result from the enclosing function.
#define KAIROS_TRY(expr)                                   \
	do {                                               \
		auto kairos_try_result_ = (expr);          \
		if (!kairos_try_result_.ok())              \
			return kairos_try_result_.error(); \
	} while (0)

// Declare `name` as the value of a Result, or propagate its error from the
// enclosing function.
#define KAIROS_TRY_ASSIGN(name, expr)          \
	auto name##_result_ = (expr);          \
	if (!name##_result_.ok())              \
		return name##_result_.error(); \
	auto name = std::move(name##_result_).value()
