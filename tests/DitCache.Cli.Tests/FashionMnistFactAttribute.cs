using DitCache.Evaluation.Data;
using Xunit;

namespace DitCache.Cli.Tests;

/// <summary>A fact that needs Debian's Fashion-MNIST files: skipped, with the install command, when they are missing.</summary>
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
