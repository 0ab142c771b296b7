using System;

namespace DitCache.Sampling;

/// <summary>A source of standard-normal noise for the initial sample and for stochastic sampler steps.</summary>
public interface INoiseSource
{
    /// <summary>Fills <paramref name="destination"/> with independent N(0, 1) draws.</summary>
    void Fill(Span<float> destination);
}

/// <summary>
/// Seeded Gaussian noise: <see cref="Random"/> with a fixed seed (the stable legacy generator .NET keeps for seeded
/// instances) through the Box-Muller transform, in float64, rounded to float32. Same seed, same numbers, on every
/// machine; not the numbers PyTorch would draw (inject those with <c>--noise</c>).
/// </summary>
public sealed class GaussianNoise : INoiseSource
{
    private readonly Random _random;
    private double _spare;
    private bool _hasSpare;

    /// <summary>A generator for <paramref name="seed"/>.</summary>
    public GaussianNoise(int seed)
    {
        _random = new Random(seed);
    }

    /// <inheritdoc/>
    public void Fill(Span<float> destination)
    {
        for (int i = 0; i < destination.Length; i++)
        {
            destination[i] = (float)Next();
        }
    }

    private double Next()
    {
        if (_hasSpare)
        {
            _hasSpare = false;
            return _spare;
        }

        double u1 = 1.0 - _random.NextDouble(); // (0, 1]: log is finite
        double u2 = _random.NextDouble();
        double radius = Math.Sqrt(-2.0 * Math.Log(u1));
        _spare = radius * Math.Sin(2.0 * Math.PI * u2);
        _hasSpare = true;
        return radius * Math.Cos(2.0 * Math.PI * u2);
    }
}
