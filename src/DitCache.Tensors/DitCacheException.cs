using System;

namespace DitCache.Tensors;

/// <summary>
/// A problem with the user's input (a file, a flag value, a shape) that the user can fix. The message is one line
/// that names the file, key, value or flag, says what was expected, and how to fix it. The CLI prints it without
/// a stack trace and exits with <see cref="ExitCode"/>.
/// </summary>
public class DitCacheException : Exception
{
    /// <summary>Creates an input error; <paramref name="exitCode"/> is 1 for bad data, 2 for bad usage.</summary>
    public DitCacheException(string message, int exitCode = 1, Exception? inner = null)
        : base(message, inner)
    {
        ExitCode = exitCode;
    }

    /// <summary>Creates an input error with exit code 1.</summary>
    public DitCacheException()
        : this("invalid input")
    {
    }

    /// <summary>Creates an input error with exit code 1.</summary>
    public DitCacheException(string message)
        : this(message, 1)
    {
    }

    /// <summary>Creates an input error with exit code 1 and an inner cause.</summary>
    public DitCacheException(string message, Exception inner)
        : this(message, 1, inner)
    {
    }

    /// <summary>Process exit code: 2 for usage errors (flags), 1 for everything else.</summary>
    public int ExitCode { get; }
}
