using System;
using System.Linq;
using DitCache.Caching.Calibration;
using DitCache.Tensors;
using Xunit;

namespace DitCache.Caching.Tests;

/// <summary>The registry, the shared helpers it feeds and the ones the policies share, against hand-derived values.</summary>
public class RegistryTests
{
    [Fact]
    public void CalibratedMethodsComeFromTheRegistryInOrder()
    {
        Assert.Equal(["teacache", "smoothcache", "magcache"], CalibrationFile.Methods);
        Assert.Equal(CalibrationFile.Methods, CacheRegistry.All.Where(m => m.Calibration is not null).Select(m => m.Name));
    }

    [Theory]
    [InlineData("fora", "FORA")]
    [InlineData("delta-dit", "Δ-DiT")]
    [InlineData("smoothcache", "SmoothCache")]
    [InlineData("unknown", "unknown")]
    public void DisplayNames(string name, string display) => Assert.Equal(display, CacheRegistry.DisplayName(name));

    [Fact]
    public void RelativeL1AndL2OnHandValues()
    {
        float[] reference = [1, -2, 3, 0];
        float[] current = [2, -2, 1, 1];
        Assert.Equal(4.0 / 6.0, RelativeError.L1(current, reference), 15);          // (1 + 0 + 2 + 1) / (1 + 2 + 3)
        Assert.Equal(Math.Sqrt(6.0 / 14.0), RelativeError.L2(current, reference), 15);  // √((1 + 0 + 4 + 1) / (1 + 4 + 9))
        float[] zero = new float[4];
        Assert.Equal(double.PositiveInfinity, RelativeError.L1(current, zero));
        Assert.Equal(0, RelativeError.L1(current, zero, zeroReference: 0));
        Assert.Equal(0, RelativeError.L1(zero, zero));
        Assert.Equal(double.PositiveInfinity, RelativeError.L2(current, zero));
        Assert.Throws<ArgumentException>(() => RelativeError.L1(current, [1f]));
    }

    [Fact]
    public void StackResidualSkipsTheWholeStackOnlyOnceAResidualIsStored()
    {
        var stack = new StackResidual(2, depth: 3);
        float[] x = [1, 2];
        Assert.Equal(0, stack.SkipBlocks(0, x, skip: true));                          // nothing stored yet: run
        Assert.Equal(1, stack.SkipBlocks(1, x, skip: true));                          // only block 0 decides
        stack.RecordBlock(1, [9, 9]);                                                 // not the last block
        Assert.False(stack.HasResidual);
        stack.RecordBlock(2, [4, 7]);                                                 // R = (4 − 1, 7 − 2)
        float[] y = [10, 20];
        Assert.Equal(3, stack.SkipBlocks(0, y, skip: true));
        Assert.Equal([13f, 25f], y);
        Assert.Equal(0, stack.SkipBlocks(0, y, skip: false));
    }
}
