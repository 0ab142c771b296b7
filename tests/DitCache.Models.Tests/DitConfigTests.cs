using DitCache.Tensors;
using Xunit;

namespace DitCache.Models.Tests;

/// <summary>Presets, FLOPs and parameter counts against the DiT paper (Peebles and Xie 2023, Table 4).</summary>
public class DitConfigTests
{
    [Fact]
    public void XlFlopsAndParametersMatchThePaperConvention()
    {
        // docs/methods.md §0: 237.35 GFLOPs per image forward (the paper's 118.6 counts a multiply-add once),
        // 23.735 TFLOPs for 50 DDIM steps with CFG; 675,129,632 parameters as DiT's train.py prints them.
        DitConfig c = DitConfig.FromPreset("DiT-XL/2", 256);
        Assert.Equal(237.35, DitFlops.Forward(c, 1) / 1e9, 2);
        Assert.Equal(23.735, 50 * DitFlops.Forward(c, 2) / 1e12, 3);
        Assert.Equal(675_129_632L, c.ParameterCount);
    }

    [Fact]
    public void PresetsMirrorDiTModels()
    {
        DitConfig xl = DitConfig.FromPreset("dit-xl/2", 256);
        Assert.Equal((28, 1152, 16, 2, 32, 4, 1000), (xl.Depth, xl.Hidden, xl.Heads, xl.Patch, xl.InputSize, xl.InChannels, xl.NumClasses));
        DitConfig s = DitConfig.FromPreset("S/8", 512);
        Assert.Equal((12, 384, 6, 8, 64), (s.Depth, s.Hidden, s.Heads, s.Patch, s.InputSize));
        Assert.Equal(12, System.Linq.Enumerable.Count(DitConfig.PresetNames));
    }

    [Theory]
    [InlineData("DiT-XXL/2")]
    [InlineData("DiT-XL/3")]
    public void UnknownPresetIsAClearError(string name)
    {
        var e = Assert.Throws<DitCacheException>(() => DitConfig.FromPreset(name, 256));
        Assert.Contains(name, e.Message);
    }

    [Theory]
    [InlineData(100_000, 2, 1152, "is over 4096")]
    [InlineData(2_147_483_646, 2, 1152, "is over 4096")]
    [InlineData(4096, 1, 1152, "do not fit one array per image")]
    public void Sizes_beyond_the_machine_are_refused_before_anything_is_allocated(int inputSize, int patch, int hidden, string expected)
    {
        var config = new DitConfig(28, hidden, 16, patch, inputSize, 4);
        var e = Assert.Throws<DitCacheException>(config.Validate);
        Assert.Contains(expected, e.Message, System.StringComparison.Ordinal);
    }
}
