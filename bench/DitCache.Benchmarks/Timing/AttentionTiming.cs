using System;
using System.Globalization;
using DitCache.Tensors;

namespace DitCache.Benchmarks;

/// <summary>
/// <c>attention [threads] [rounds]</c>: milliseconds per call of the attention kernels, all variants alternating in
/// one process (<see cref="Timer"/>), per shape: the online-softmax kernel as it was before (a verbatim copy,
/// <see cref="FlashAttentionBefore"/>), the current one with key blocks of 128, 256 and 512, and the explicit kernel
/// (<see cref="Kernels.AttentionWithProbabilities"/>: T×T scores, softmax by rows, P·V). Runs on the ISA the runtime
/// picks: AVX-512, or AVX2 under <c>DOTNET_EnableAVX512=0</c>. Prints the largest difference of each output from
/// the explicit kernel's. With one thread each batch is timed by the thread's CPU time (the machine is shared).
/// </summary>
internal static class AttentionTiming
{
    public static void Run(string[] args)
    {
        int threads = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 1;
        int rounds = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 9;
        Console.WriteLine($"ISA {ManagedGemm.Resolve(GemmIsa.Auto)}, threads {threads}, rounds {rounds}, {(threads == 1 ? "thread CPU time" : "wall clock")}, load {System.IO.File.ReadAllText("/proc/loadavg").Trim()}");
        Console.WriteLine("shape | before | key block 128 | 256 | 512 | explicit | before/256 | explicit/256 | max diff");
        (string Name, int Batch, int Tokens, int Heads, int HeadDim)[] shapes =
        [
            ("shipped CFG 20: T 49, 2 heads, d 64, batch 40", 40, 49, 2, 64),
            ("T 64, 6 heads, d 64, batch 8", 8, 64, 6, 64),
            ("DiT-S/2: T 256, 6 heads, d 64, batch 2", 2, 256, 6, 64),
            ("DiT-XL/2 256px: T 256, 16 heads, d 72, batch 2", 2, 256, 16, 72),
            ("DiT-XL/2 512px: T 1024, 16 heads, d 72, batch 1", 1, 1024, 16, 72),
        ];
        GemmIsa isa = GemmIsa.Auto;
        foreach (var (name, batch, tokens, heads, headDim) in shapes)
        {
            int width = heads * headDim;
            float[] qkv = new float[batch * tokens * 3 * width];
            var rng = new Random(7);
            for (int i = 0; i < qkv.Length; i++)
            {
                qkv[i] = (float)((rng.NextDouble() * 4) - 2);
            }

            float[] y0 = new float[batch * tokens * width], y1 = new float[y0.Length], y2 = new float[y0.Length];
            float[] y3 = new float[y0.Length], y4 = new float[y0.Length];
            float[] scratch = new float[Math.Max(Kernels.AttentionScratchSize(tokens, headDim, threads),
                FlashAttentionBefore.AttentionScratchSize(tokens, headDim, threads))];
            float[] maps = new float[(long)batch * heads * tokens * tokens];
            int r = tokens >= 1024 ? Math.Max(3, rounds / 2) : rounds;
            int calls = tokens >= 1024 ? 1 : 3;
            double[] ms = Timer.Compare(r, calls, threadCpu: threads == 1,
                () => FlashAttentionBefore.AttentionOn(isa, qkv, y0, batch, tokens, heads, headDim, scratch, threads),
                () => Kernels.AttentionOn(isa, qkv, y1, batch, tokens, heads, headDim, scratch, threads, 128),
                () => Kernels.AttentionOn(isa, qkv, y2, batch, tokens, heads, headDim, scratch, threads, 256),
                () => Kernels.AttentionOn(isa, qkv, y3, batch, tokens, heads, headDim, scratch, threads, 512),
                () => Kernels.AttentionWithProbabilities(qkv, y4, maps, batch, tokens, heads, headDim, threads));
            double diff = Math.Max(Math.Max(MaxDiff(y0, y4), MaxDiff(y1, y4)), Math.Max(MaxDiff(y2, y4), MaxDiff(y3, y4)));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{name} | {ms[0]:F3} | {ms[1]:F3} | {ms[2]:F3} | {ms[3]:F3} | {ms[4]:F3} | {ms[0] / ms[2]:F2}x | {ms[4] / ms[2]:F2}x | {diff:E1}"));
        }
    }

    private static double MaxDiff(float[] a, float[] b)
    {
        double m = 0;
        for (int i = 0; i < a.Length; i++)
        {
            m = Math.Max(m, Math.Abs(a[i] - b[i]));
        }

        return m;
    }
}
