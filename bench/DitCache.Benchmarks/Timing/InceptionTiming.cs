using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using DitCache.Evaluation.Inception;
using DitCache.Tensors;

namespace DitCache.Benchmarks;

/// <summary>
/// <c>inception [threads] [rounds] [side] [out.bin]</c>: seconds for the FID Inception's pool3 features of one RGB image
/// of side×side (resized to 299x299 inside, as pytorch-fid does) on the real shapes with hashed weights
/// (<see cref="InceptionWeights.HashedFile"/>), pixel values <c>((37·i) mod 256) / 255</c>. One warm-up, then the
/// median and best of the rounds. With a fifth argument the 2048 features are written there as raw float32, which
/// tools/bench/time_inception.py compares with PyTorch's features of the same weights and image.
/// </summary>
internal static class InceptionTiming
{
    public static void Run(string[] args)
    {
        int threads = args.Length > 1 ? int.Parse(args[1]) : 1;
        int rounds = args.Length > 2 ? int.Parse(args[2]) : 5;
        int side = args.Length > 3 ? int.Parse(args[3]) : 256;
        var net = new FidInception(InceptionWeights.FromFile(InceptionWeights.HashedFile()), new ManagedGemm(threads));
        float[] image = new float[3 * side * side];
        for (int i = 0; i < image.Length; i++)
        {
            image[i] = (37 * i % 256) / 255f;
        }

        float[] features = new float[FidInception.FeatureSize];
        net.Features(image, 1, side, side, features);                                             // warm-up: JIT
        var seconds = new double[rounds];
        for (int r = 0; r < rounds; r++)
        {
            long start = Stopwatch.GetTimestamp();
            net.Features(image, 1, side, side, features);
            seconds[r] = Stopwatch.GetElapsedTime(start).TotalSeconds;
        }

        double[] sorted = seconds.Order().ToArray();
        Console.WriteLine($"RESULT inception {side}x{side} managed t{threads} wall median {sorted[rounds / 2] * 1e3:F1} ms best {sorted[0] * 1e3:F1} ms");
        if (args.Length > 4)
        {
            File.WriteAllBytes(args[4], MemoryMarshal.AsBytes<float>(features).ToArray());
        }
    }
}
