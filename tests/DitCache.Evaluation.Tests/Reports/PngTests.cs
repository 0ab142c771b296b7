using System;
using DitCache.Evaluation.Reports;
using Xunit;

namespace DitCache.Evaluation.Tests.Reports;

/// <summary>
/// <see cref="Png.ToByte"/> against torchvision's save_image mapping for value_range (−1, 1) (DiT's sample.py):
/// (clamp(x, −1, 1) + 1) / 2 · 255 + 0.5, truncated, written here in double precision.
/// </summary>
public class PngTests
{
    [Theory]
    [InlineData(-1f, 0)]
    [InlineData(1f, 255)]
    [InlineData(0f, 128)]                       // 127.5 + 0.5: rounds half up
    [InlineData(-5f, 0)]                        // clamped
    [InlineData(7f, 255)]
    [InlineData(float.NegativeInfinity, 0)]
    [InlineData(float.PositiveInfinity, 255)]
    [InlineData(float.NaN, 0)]
    public void MapsEndsMiddleAndOutOfRangeValues(float v, int expected) => Assert.Equal(expected, Png.ToByte(v));

    [Fact]
    public void MatchesTheRoundedReferenceOnADenseGrid()
    {
        // Values of the grid stay at least 1e-3 of a byte from a rounding boundary, where float and double agree.
        int checkedCount = 0;
        for (int i = -2600; i <= 2600; i++)
        {
            double x = i / 2048.0;
            double scaled = ((Math.Clamp(x, -1.0, 1.0) + 1) / 2 * 255) + 0.5;
            if (Math.Abs(scaled - Math.Round(scaled)) < 1e-3)
            {
                continue;
            }

            Assert.Equal((int)Math.Clamp(Math.Floor(scaled), 0, 255), Png.ToByte((float)x));
            checkedCount++;
        }

        Assert.True(checkedCount > 5000, $"{checkedCount} values checked");
    }
}
