using System;
using System.Diagnostics;
using DitCache.Sampling;
using DitCache.Tensors;

namespace DitCache.Peers;

/// <summary>
/// DDIM (η = 0) with classifier-free guidance on all channels around a peer's forward, with DitCache's arithmetic:
/// the batch [x; x] with labels [y; null] at the step's DDPM timestep, eps = uncond + scale·(cond − uncond)
/// (<c>DitModel.ForwardWithCfg</c>), then x0 = recip·x − recipm1·eps, eps' = (recip·x − x0) / recipm1,
/// x = √ᾱ_prev·x0 + √(1 − ᾱ_prev)·eps' with the float64 tables of <see cref="GaussianDiffusion"/> cast to float32
/// (<c>Ddim.Step</c>). Buffers are made and bound before the clock starts; the loop allocates nothing of its own.
/// </summary>
internal sealed class PeerSampler
{
    private readonly PeerShape _shape;
    private readonly int[] _classes;
    private readonly int _steps;
    private readonly float _cfg;
    private readonly float[] _x;
    private readonly IPeerModel _model;

    public PeerSampler(IPeerModel model, int[] classes, int steps, float cfg, Tensor noise)
    {
        _model = model;
        _shape = model.Shape;
        _classes = classes;
        _steps = steps;
        _cfg = cfg;
        int n = classes.Length, batch = cfg > 1f ? 2 * n : n;
        if (batch != _shape.Batch)
        {
            throw new ArgumentException($"{n} images with CFG {cfg} make a batch of {batch}, the export has batch {_shape.Batch}: re-export at batch {batch}");
        }

        if (!noise.HasShape(n, _shape.InChannels, _shape.InputSize, _shape.InputSize))
        {
            throw new ArgumentException($"noise has shape {noise.ShapeText}; expected [{n}, {_shape.InChannels}, {_shape.InputSize}, {_shape.InputSize}]");
        }

        foreach (int y in classes)
        {
            if (y < 0 || y >= _shape.NullClass)
            {
                throw new ArgumentException($"class {y} is out of range: this model has classes 0..{_shape.NullClass - 1}");
            }
        }

        _x = (float[])noise.Data.Clone();
    }

    public Tensor Sample() => new(_x, _classes.Length, _shape.InChannels, _shape.InputSize, _shape.InputSize);

    /// <summary>Runs the loop; returns its seconds and the median step's milliseconds (first step left out).</summary>
    public (double Seconds, double StepMs) Run()
    {
        PeerShape s = _shape;
        int n = _classes.Length, image = s.Image, outImage = s.OutImage, batch = s.Batch;
        bool useCfg = batch == 2 * n && _cfg > 1f;
        var diffusion = new GaussianDiffusion(_steps);
        float[] input = new float[batch * image], t = new float[batch], output = new float[batch * outImage];
        long[] y = new long[batch];
        for (int i = 0; i < batch; i++)
        {
            y[i] = i < n ? _classes[i] : s.NullClass;
        }

        long[] stamps = new long[_steps + 1];
        using IPeerRun run = _model.Bind(input, t, y, output);
        stamps[0] = Stopwatch.GetTimestamp();
        for (int step = 0; step < _steps; step++)
        {
            int index = _steps - 1 - step;                                    // respaced index, noisiest first
            _x.CopyTo(input, 0);
            if (useCfg)
            {
                _x.CopyTo(input, n * image);
            }

            Array.Fill(t, diffusion.TimestepMap[index]);
            run.Run();

            float abarPrev = (float)diffusion.AlphasCumprodPrev[index];
            float recip = (float)Math.Sqrt(1.0 / diffusion.AlphasCumprod[index]);
            float recipm1 = (float)Math.Sqrt((1.0 / diffusion.AlphasCumprod[index]) - 1.0);
            float sqrtPrev = MathF.Sqrt(abarPrev), dirScale = MathF.Sqrt(1 - abarPrev);
            for (int img = 0; img < n; img++)
            {
                Span<float> xi = _x.AsSpan(img * image, image);
                ReadOnlySpan<float> cond = output.AsSpan(img * outImage, image);
                ReadOnlySpan<float> uncond = useCfg ? output.AsSpan((n + img) * outImage, image) : cond;
                for (int j = 0; j < image; j++)
                {
                    float eps = useCfg ? uncond[j] + (_cfg * (cond[j] - uncond[j])) : cond[j];
                    float x0 = (recip * xi[j]) - (recipm1 * eps);
                    float epsHat = ((recip * xi[j]) - x0) / recipm1;
                    xi[j] = (x0 * sqrtPrev) + (dirScale * epsHat);
                }
            }

            stamps[step + 1] = Stopwatch.GetTimestamp();
        }

        double seconds = Stopwatch.GetElapsedTime(stamps[0], stamps[_steps]).TotalSeconds;
        double[] ms = new double[Math.Max(_steps - 1, 1)];
        for (int i = 0; i < ms.Length; i++)
        {
            int k = _steps > 1 ? i + 1 : 0;
            ms[i] = Stopwatch.GetElapsedTime(stamps[k], stamps[k + 1]).TotalMilliseconds;
        }

        Array.Sort(ms);
        double median = ms.Length % 2 == 1 ? ms[ms.Length / 2] : (ms[(ms.Length / 2) - 1] + ms[ms.Length / 2]) / 2;
        return (seconds, median);
    }
}
