using System.Linq;
using Xunit;

namespace DitCache.Caching.Tests;

/// <summary>Full-step lists at 50 steps against docs/methods.md §4.1 and 5.1 (ordinals n = 49 − i).</summary>
public class ScheduleTests
{
    // TaylorSeer-DiT N=3: i = {49, 48, 45, …, 3, 0} -> n = {0, 1, 4, …, 46, 49}.
    private static readonly int[] s_taylor3 = [0, .. SeamHarness.Range(1, 49, 3)];

    // N=5: i = {49, 48, 43, 38, …, 8, 3} -> n = {0, 1, 6, …, 41, 46}; steps 47..49 are forecast.
    private static readonly int[] s_taylor5 = [0, .. SeamHarness.Range(1, 46, 5)];

    [Fact]
    public void TaylorSeerAndFocaFollowTheOfficialSchedule()
    {
        Assert.Equal(18, s_taylor3.Length);
        Assert.Equal(11, s_taylor5.Length);
        Assert.Equal(s_taylor3, SeamHarness.Ordinals(new TaylorSeerOptions(3).FullSteps(50)));
        Assert.Equal(s_taylor5, SeamHarness.Ordinals(new TaylorSeerOptions(5).FullSteps(50)));
        Assert.Equal(s_taylor3, SeamHarness.Ordinals(new FocaOptions(3).FullSteps(50)));
        Assert.Equal(s_taylor5, SeamHarness.Ordinals(new FocaOptions(5).FullSteps(50)));
        Assert.Equal([0, .. SeamHarness.Range(1, 49, 4)], SeamHarness.Ordinals(new TaylorSeerOptions(4).FullSteps(50)));
        Assert.Equal(26, SeamHarness.Ordinals(new TaylorSeerOptions(2).FullSteps(50)).Length);
        Assert.Equal(10, SeamHarness.Ordinals(new TaylorSeerOptions(6).FullSteps(50)).Length);
    }

    [Fact]
    public void WarmupMovesTheCycle()
    {
        Assert.Equal([0, 5, 10, 15], SeamHarness.Ordinals(new TaylorSeerOptions(5, 1, Warmup: 1).FullSteps(20)));
        Assert.Equal([0, 1, 2, 7, 12, 17], SeamHarness.Ordinals(new FocaOptions(5, Warmup: 3).FullSteps(20)));
        Assert.True(new FocaOptions(5, Warmup: 50).FullSteps(50).All(f => f));
        Assert.True(new TaylorSeerOptions(1).FullSteps(50).All(f => f));
    }

    [Fact]
    public void ForaFollowsTheOfficialSchedule()
    {
        // i = 49 or i mod N == 0.
        int[] fora3 = SeamHarness.Ordinals(new ForaOptions(3).FullSteps(50));
        Assert.Equal([0, .. SeamHarness.Range(1, 49, 3)], fora3);
        Assert.Equal(18, fora3.Length);
        int[] fora5 = SeamHarness.Ordinals(new ForaOptions(5).FullSteps(50));
        Assert.Equal([0, .. SeamHarness.Range(4, 49, 5)], fora5);
        Assert.Equal(11, fora5.Length);
        Assert.True(new ForaOptions(1).FullSteps(50).All(f => f));
    }
}
