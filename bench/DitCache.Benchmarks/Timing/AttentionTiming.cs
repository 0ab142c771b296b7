using System;
using DitCache.Tensors;

namespace DitCache.Benchmarks;

/// <summary>
/// <c>attention [threads] [rounds]</c>: the previous explicit-matrix attention (<see cref="LegacyAttention"/>) against
/// the flash kernel (<see cref="Kernels.Attention"/>) and the explicit kernel that keeps the maps
/// (<see cref="Kernels.AttentionWithProbabilities"/>), same process, alternating rounds, median ms per call.
/// </summary>
internal static class AttentionTiming
{
    public static void Run(string[] args)
    {
        int threads = args.Length > 1 ? int.Parse(args[1]) : 1;
        int rounds = args.Length > 2 ? int.Parse(args[2]) : 15;
        Console.WriteLine($"attention, {threads} thread(s), median of {rounds} alternating rounds, ISA {ManagedGemm.Resolve(GemmIsa.Auto)}");
        Console.WriteLine("| shape | old explicit (ms) | new flash (ms) | old/new | with maps (ms) |");
        Console.WriteLine("|---|---:|---:|---:|---:|");
        foreach ((string name, int batch, int tokens, int heads, int headDim) in new[]
        {
            ("DiT-S/2: 256 tokens, 6 heads, d 64, batch 2", 2, 256, 6, 64),
            ("shipped: 49 tokens, 2 heads, d 64, batch 40", 40, 49, 2, 64),
            ("shipped: 49 tokens, 2 heads, d 64, batch 200", 200, 49, 2, 64),
        })
        {
            int width = heads * headDim;
            float[] qkv = new float[batch * tokens * 3 * width];
            var rng = new Random(1);
            for (int i = 0; i < qkv.Length; i++)
            {
                qkv[i] = (float)((rng.NextDouble() * 2) - 1);
            }

            float[] outOld = new float[batch * tokens * width], outNew = new float[outOld.Length], outMaps = new float[outOld.Length];
            float[] legacyScratch = new float[LegacyAttention.ScratchSize(tokens, threads)];
            float[] flashScratch = new float[Kernels.AttentionScratchSize(tokens, headDim, threads)];
            float[] maps = new float[batch * heads * tokens * tokens];
            int calls = Math.Max(1, 200_000_000 / (batch * heads * tokens * tokens * headDim));
            double[] ms = Timer.Compare(rounds, calls,
                () => LegacyAttention.Attention(qkv, outOld, batch, tokens, heads, headDim, legacyScratch, threads),
                () => Kernels.Attention(qkv, outNew, batch, tokens, heads, headDim, flashScratch, threads),
                () => Kernels.AttentionWithProbabilities(qkv, outMaps, maps, batch, tokens, heads, headDim, threads));
            double maxDiff = 0;
            for (int i = 0; i < outOld.Length; i++)
            {
                maxDiff = Math.Max(maxDiff, Math.Abs(outOld[i] - outNew[i]));
            }

            Console.WriteLine($"| {name} | {ms[0]:F3} | {ms[1]:F3} | {ms[0] / ms[1]:F2}x | {ms[2]:F3} |   (max |old-new| {maxDiff:E1})");
        }
    }
}
