using DitCache.Tensors;
using Xunit;

namespace DitCache.Tests;

/// <summary>
/// A fact that needs OpenBLAS (<c>libopenblas.so.0</c>, Debian's libopenblas0-pthread): reported as skipped, with the
/// install command, when the library is missing, instead of passing without running (xunit 2 has no runtime skip,
/// so the condition is evaluated when the attribute is built). Linked into every test project that uses it.
/// </summary>
public sealed class OpenBlasFactAttribute : FactAttribute
{
    public OpenBlasFactAttribute()
    {
        if (!OpenBlasGemm.IsAvailable)
        {
            Skip = "OpenBLAS (libopenblas.so.0) is not installed; apt-get install -y libopenblas0-pthread (test.sh does)";
        }
    }
}
