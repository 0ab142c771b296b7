using DitCache.Evaluation.Data;
using Xunit;

namespace DitCache.Evaluation.Tests.Data;

/// <summary>
/// A fact that needs Debian's Fashion-MNIST files: reported as skipped, with the install command, when they are
/// missing (xunit 2 has no runtime skip, so the condition is evaluated when the attribute is built).
/// </summary>
public sealed class FashionMnistFactAttribute : FactAttribute
{
    public FashionMnistFactAttribute()
    {
        if (!FashionMnist.IsInstalled())
        {
            Skip = $"Fashion-MNIST not found under {FashionMnist.DefaultRoot}; {FashionMnist.InstallHint}";
        }
    }
}
