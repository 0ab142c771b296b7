using System;
using DitCache.Caching;
using DitCache.Tensors;

namespace DitCache.Models;

/// <summary>Receives named intermediate tensors of a forward (tests and diagnostics only).</summary>
/// <param name="stage">"x_embed", "t_emb", "c", "block{i}.attn", "block{i}.mlp", "block{i}".</param>
/// <param name="values">The tensor, valid only during the call.</param>
public delegate void StageTap(string stage, ReadOnlySpan<float> values);

/// <summary>
/// The Diffusion Transformer of facebookresearch/DiT <c>models.py</c> (docs/methods.md §6), read top to bottom in
/// the same order: embedders, block, final layer, the model forward, then classifier-free guidance. Row-major
/// float32; every activation lives in a <see cref="DitRunState"/>. The cache seam (<see cref="ICachePolicy"/>) is
/// called at the points marked "cache:" so every place an accelerator can act is visible here.
/// </summary>
public sealed class DitModel
{
    private readonly DitWeights _w;
    private readonly IGemm _gemm;
    private readonly int _threads;

    // Up to this many rows the conditioning Linears read their weights in place; above, a GEMM (whose packing is
    // then shared by enough rows) is faster.
    private const int FewConditionRows = 64;

    /// <summary>
    /// A model over <paramref name="weights"/>. <paramref name="gemm"/> runs every Linear with its own thread count;
    /// <paramref name="threads"/> is the thread count of the model's own kernels (attention heads, the adaLN rows, the
    /// LayerNorm+modulate and gated-residual passes), normally the same as the GEMM's (<c>--threads</c> sets both).
    /// </summary>
    /// <remarks>
    /// One level of threads at a time. Every kernel call returns before the next starts, and each parallelises on its
    /// own: the managed GEMM and the attention heads on DitCache.Tensors' shared worker pool (persistent
    /// threads, nothing allocated per call; a call made from inside a parallel region runs inline), OpenBLAS on its
    /// own pthreads, whose count <see cref="OpenBlasGemm"/> sets with <c>openblas_set_num_threads(threads)</c> before
    /// every call. Attention never calls the <see cref="IGemm"/>: its block products run on the managed
    /// micro-kernels inside the pool's threads, so with OpenBLAS no BLAS call is ever in flight while attention heads
    /// run, and BLAS threads never nest inside ours or ours inside BLAS's. (OpenBLAS's idle threads busy-wait with
    /// sched_yield for a short while after a call, bounded by OPENBLAS_THREAD_TIMEOUT; they yield to our workers.)
    /// Every Linear weight is handed to <see cref="IGemm.Prepare"/> here, once: the managed GEMM packs it into its
    /// panel layout (and to BF16 with <c>--gemm managed-bf16</c>), OpenBLAS ignores it. The weights must not change
    /// afterwards. <see cref="DitWeights.Exclusive"/> weights go to <see cref="IGemm.PrepareInPlace(float[], int, int)"/> instead, so that
    /// the packed panels replace the row-major weights rather than double them.
    /// </remarks>
    /// <exception cref="InvalidOperationException"><paramref name="weights"/> are exclusive and another model has them.</exception>
    public DitModel(DitWeights weights, IGemm gemm, int threads)
    {
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(gemm);
        _w = weights;
        _gemm = gemm;
        _threads = Math.Max(1, threads);
        if (weights.Exclusive && !weights.TryClaim())
        {
            throw new InvalidOperationException("these DitWeights were read with exclusive: true and another DitModel has packed them in place; read the file again for a second model");
        }

        PrepareWeights();
    }

    /// <summary>The model's config.</summary>
    public DitConfig Config => _w.Config;

    // Every weight the GEMM sees, as [out, in] (the Linear layout); the patch-embedding conv is a Linear over im2col rows.
    // Exclusive weights: the token-path Linears are packed in place; the conditioning Linears (timestep MLP, adaLN)
    // stay row-major and unprepared, because LinearFewRows reads them in place on every step and a packed copy of
    // them would be a third of DiT-XL/2 again. A GEMM call on them (more than FewConditionRows distinct rows, or
    // PreparedConditioning's one product per run) packs them per call instead.
    private void PrepareWeights()
    {
        DitConfig c = Config;
        int d = c.Hidden;
        bool inPlace = _w.Exclusive;
        WeightPrecision precision = _w.Precision;
        bool half = precision != WeightPrecision.Float32;
        if (half && !_gemm.Supports(precision))
        {
            throw new DitCacheException($"--weights {precision.Name()} needs a GEMM that widens 16-bit weights; {_gemm.Name} does not: use --gemm managed", 2);
        }

        void Token(float[] w, int n, int k)
        {
            if (half)
            {
                _gemm.PrepareInPlace(w, n, k, precision);
            }
            else if (inPlace)
            {
                _gemm.PrepareInPlace(w, n, k);
            }
            else
            {
                _gemm.Prepare(w, n, k);
            }
        }

        void Condition(float[] w, int n, int k)
        {
            if (half)
            {
                _gemm.PrepareInPlace(w, n, k, precision);       // read through the GEMM: LinearFewRows reads float32 only
            }
            else if (!inPlace)
            {
                _gemm.Prepare(w, n, k);
            }
        }

        if (inPlace)
        {
            _gemm.PrepareInPlace(_w.PatchEmbed.W, d, c.InChannels * c.Patch * c.Patch);     // float32 in every precision
        }
        else
        {
            _gemm.Prepare(_w.PatchEmbed.W, d, c.InChannels * c.Patch * c.Patch);
        }

        Condition(_w.TimeMlp0.W, d, DitWeights.TimeFrequencyDim);
        Condition(_w.TimeMlp2.W, d, d);
        foreach (DitBlockWeights bw in _w.Blocks)
        {
            Condition(bw.AdaLn.W, 6 * d, d);
            Token(bw.Qkv.W, 3 * d, d);
            Token(bw.Proj.W, d, d);
            Token(bw.Fc1.W, c.MlpHidden, d);
            Token(bw.Fc2.W, d, c.MlpHidden);
        }

        Condition(_w.FinalAdaLn.W, 2 * d, d);
        Token(_w.FinalLinear.W, c.Patch * c.Patch * c.OutChannels, d);
    }

    /// <summary>The weights.</summary>
    public DitWeights Weights => _w;

    /// <summary>Optional observer of intermediate tensors; null in normal runs.</summary>
    public StageTap? Tap { get; set; }

    /// <summary>Buffers for a forward of <paramref name="batch"/> rows.</summary>
    public DitRunState CreateState(int batch) => new(Config, batch, _threads);

    // ------------------------------------------------------------------------------------------------------------
    // Embedders

    /// <summary>x_embedder + pos_embed: conv with kernel = stride = p, flattened to row-major tokens.</summary>
    private void EmbedPatches(ReadOnlySpan<float> x, DitRunState s)
    {
        DitConfig c = Config;
        int b = s.Batch, t = c.Tokens, d = c.Hidden;
        Kernels.PatchEmbed(_gemm, x, _w.PatchEmbed.W, _w.PatchEmbed.B, s.X, s.Im2Col, b, c.InChannels, c.InputSize, c.InputSize, c.Patch, d); // (B, T, D)
        Kernels.AddBias(s.X, _w.PosEmbed, b, t * d);                                                                   // (B, T, D) + pos_embed
    }

    /// <summary>
    /// c = t_embedder(t) + y_embedder(y); y_embedder is a table lookup (no label dropout at inference). c depends on
    /// (t, y) alone, so the conditioning path runs on the distinct (t, y) rows of the batch (U of them, in order of
    /// first appearance, <see cref="ConditionRows"/>); c itself is written for all B rows.
    /// </summary>
    private void EmbedConditioning(ReadOnlySpan<float> timesteps, ReadOnlySpan<int> labels, DitRunState s)
    {
        int d = Config.Hidden;
        ConditionRows rows = s.Conditions;
        int u = rows.Find(timesteps, labels);
        if (rows.TryUsePrepared(allowed: Tap is null, out PreparedConditioning? table))
        {
            for (int i = 0; i < u; i++)
            {
                table.C(rows.PreparedRow[i]).CopyTo(s.CondC.AsSpan(i * d, d));                                         // (D) prepared c
                table.SiluC(rows.PreparedRow[i]).CopyTo(s.SiluC.AsSpan(i * d, d));
            }

            rows.Expand(s.CondC, s.C, d);                                                                              // (B, D)
            return;
        }

        Kernels.TimestepEmbedding(rows.Timesteps.AsSpan(0, u), s.TimeFreq.AsSpan(0, u * DitWeights.TimeFrequencyDim),
            DitWeights.TimeFrequencyDim);                                                                              // (U, 256)
        ConditionLinear(s.TimeFreq, _w.TimeMlp0.W, _w.TimeMlp0.B, s.TimeHidden, u, DitWeights.TimeFrequencyDim, d, s); // (U, D)
        Kernels.Silu(s.TimeHidden.AsSpan(0, u * d), s.TimeHidden.AsSpan(0, u * d));                                    // (U, D)
        ConditionLinear(s.TimeHidden, _w.TimeMlp2.W, _w.TimeMlp2.B, s.CondC, u, d, d, s);                              // (U, D)
        if (Tap is not null)
        {
            rows.Expand(s.CondC, s.C, d);
            Tap("t_emb", s.C);                                                                                         // (B, D)
        }

        for (int i = 0; i < u; i++)
        {
            Kernels.AddBias(s.CondC.AsSpan(i * d, d), _w.LabelTable.AsSpan(rows.Labels[i] * d, d), 1, d);              // (D) += table[y]
        }

        Kernels.Silu(s.CondC.AsSpan(0, u * d), s.SiluC.AsSpan(0, u * d));                                              // (U, D) adaLN input
        rows.Expand(s.CondC, s.C, d);                                                                                  // (B, D)
    }

    /// <summary>
    /// The adaLN modulation of layer <paramref name="layer"/> (a block, or depth for the final layer) for the distinct
    /// rows into s.CondMod (U, width): looked up in the prepared table when this forward uses it, else computed.
    /// </summary>
    private void Modulation(int layer, LinearWeights adaLn, int width, DitRunState s)
    {
        int d = Config.Hidden;
        ConditionRows rows = s.Conditions;
        if (rows.UsePrepared && rows.Prepared is { } table)
        {
            for (int i = 0; i < rows.Count; i++)
            {
                table.Modulation(layer, rows.PreparedRow[i]).CopyTo(s.CondMod.AsSpan(i * width, width));               // prepared row
            }

            return;
        }

        ConditionLinear(s.SiluC, adaLn.W, adaLn.B, s.CondMod, rows.Count, d, width, s);                                // (U, width)
    }

    // ------------------------------------------------------------------------------------------------------------
    // Conditioning rows: the table prepared for a whole run, the distinct (t, y) rows of a forward

    /// <summary>
    /// Computes the conditioning path for every pair of <paramref name="timesteps"/> × <paramref name="labels"/> a run
    /// will feed, ahead of its step loop: c, SiLU(c), every block's and the final layer's adaLN modulation, each as one
    /// product over all pairs instead of one stream of the weights per step (on a cached step those streams are most of
    /// the work: DiT-S/2's adaLN weights are 42 MB). <see cref="Forward"/> then copies its distinct rows from the table;
    /// a (t, y) outside it is computed as usual. The values equal the per-step path's up to float rounding (a GEMM
    /// sums in another order). The table holds pairs·(D + depth·6D + 2D) floats; above <paramref name="maxBytes"/>
    /// nothing is prepared and false is returned. Tap observers bypass the table.
    /// </summary>
    public bool PrepareConditioning(ReadOnlySpan<float> timesteps, ReadOnlySpan<int> labels, DitRunState s, long maxBytes = 256L << 20)
    {
        s.Conditions.Prepared = null;
        CheckLabels(labels);
        s.Conditions.Prepared = PreparedConditioning.TryCompute(_w, _gemm, timesteps, labels, maxBytes);
        return s.Conditions.Prepared is not null;
    }

    /// <summary>
    /// A Linear on the distinct conditioning rows (timestep MLP, adaLN): with few rows the weight is read in place
    /// (<see cref="Kernels.LinearFewRows"/>, whatever the GEMM backend), since packing it for a GEMM costs as much as
    /// the product; these are most of the work of a cached step. 16-bit weights (<see cref="DitWeights.Precision"/>)
    /// go through the GEMM, which holds them packed.
    /// </summary>
    private void ConditionLinear(ReadOnlySpan<float> x, float[] w, float[] bias, Span<float> y, int rows, int inF, int outF, DitRunState s)
    {
        if (rows <= FewConditionRows && _w.Precision == WeightPrecision.Float32)
        {
            Kernels.LinearFewRows(x[..(rows * inF)], w, bias, y[..(rows * outF)], rows, inF, outF, s.FewRowsScratch, _threads);
        }
        else
        {
            Kernels.Linear(_gemm, x[..(rows * inF)], w, bias, y[..(rows * outF)], rows, inF, outF);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // DiTBlock with adaLN-Zero

    // Offsets of the six modulation vectors inside a (B, 6D) row, in models.py chunk order.
    private enum Mod
    {
        ShiftMsa,
        ScaleMsa,
        GateMsa,
        ShiftMlp,
        ScaleMlp,
        GateMlp,
    }

    /// <summary>
    /// models.py <c>DiTBlock.forward</c> on the residual stream s.X (rows, T, D) of the current pass's rows. Each
    /// module output comes through its cache site (<see cref="RunSite"/>), which computes it, forecasts it or
    /// recomputes some of its tokens.
    /// </summary>
    private void Block(int l, DitRunState s, ICachePolicy cache)
    {
        // adaLN-Zero: c -> (shift, scale, gate) x 2, always from the current conditioning, even on cached steps.
        AdaLnModulation(l, s);                                                                                         // (rows, 6D)
        s.Stats.Flops += DitFlops.AdaLn(Config, s.Rows);
        BlockBody(l, s, cache);
    }

    /// <summary>Block <paramref name="l"/> after its modulation (s.Mod holds it): the two gated residual branches.</summary>
    private void BlockBody(int l, DitRunState s, ICachePolicy cache)
    {
        DitConfig c = Config;
        int b = s.Rows, t = c.Tokens, d = c.Hidden, stride = 6 * d, len = b * t * d;
        Span<float> x = s.X.AsSpan(0, len), feature = s.Feature.AsSpan(0, len);
        ReadOnlySpan<float> mod = s.Mod.AsSpan(0, b * stride);

        // x = x + gate_msa * attn(modulate(norm1(x), shift_msa, scale_msa))
        RunSite(new FeatureSite(l, Site.Attn), s, cache);                                                              // (rows, T, D) attn
        Tap?.Invoke($"block{l}.attn", feature);
        Kernels.GatedResidualAdd(x, feature, mod, stride, (int)Mod.GateMsa * d, b, t, d, _threads);                   // (rows, T, D) x += gate_msa * attn

        // x = x + gate_mlp * mlp(modulate(norm2(x), shift_mlp, scale_mlp))
        RunSite(new FeatureSite(l, Site.Mlp), s, cache);                                                               // (rows, T, D) mlp
        Tap?.Invoke($"block{l}.mlp", feature);
        Kernels.GatedResidualAdd(x, feature, mod, stride, (int)Mod.GateMlp * d, b, t, d, _threads);                   // (rows, T, D) x += gate_mlp * mlp
        Tap?.Invoke($"block{l}", x);
    }

    /// <summary>Block <paramref name="l"/>'s adaLN modulation of the current pass's rows into s.Mod (rows, 6D).</summary>
    private void AdaLnModulation(int l, DitRunState s)
    {
        int d = Config.Hidden;
        Modulation(l, _w.Blocks[l].AdaLn, 6 * d, s);                                                                   // (U, 6D)
        s.Conditions.ExpandRows(s.CondMod, s.Mod, 6 * d, s.PassRows.AsSpan(0, s.Rows));                                  // (rows, 6D)
    }

    /// <summary>
    /// One cache site: the module output of <paramref name="site"/> for the current s.X and s.Mod into s.Feature
    /// (B, T, D). A token-wise cache (MLP sites only) may write its stale output and pick tokens to recompute; else the
    /// cache may forecast the output; else the module runs, reporting attention scores or value norms if the cache
    /// asks, and the cache records it. With shadow diagnostics a forecast is measured against the module's true output.
    /// </summary>
    private void RunSite(FeatureSite site, DitRunState s, ICachePolicy cache)
    {
        DitConfig c = Config;
        int b = s.Rows, t = c.Tokens, len = b * t * c.Hidden;
        Span<float> feature = s.Feature.AsSpan(0, len);
        DitBlockWeights bw = _w.Blocks[site.Block];
        double flops = (site.Site == Site.Attn ? DitFlops.Attention(c, b) : DitFlops.Mlp(c, b)) + DitFlops.LayerNorm(c, b);
        int fresh = site.Site == Site.Mlp ? cache.SelectTokens(site, feature, s.TokenIndex.AsSpan(0, b * t)) : -1;    // cache: token-wise
        if (fresh >= 0)
        {
            if (fresh > t)
            {
                throw new InvalidOperationException($"cache policy selected {fresh} tokens per image at {site}; an image has {t}");
            }

            PartialMlp(bw, s, fresh);                                                                                  // (rows, k, D) into (rows, T, D)
            cache.Record(site, feature);                                                                               // cache: record
            s.Stats.Partial(site, flops * fresh / t, s.TokenIndex.AsSpan(0, b * fresh), fresh);
        }
        else if (cache.TryForecast(site, feature))                                                                     // cache: module forecast
        {
            s.Stats.Forecast(site);
            if (s.ShadowBuffers is { } shadow)
            {
                Module(site, bw, s, shadow.Feature.AsSpan(0, len), scores: false, norms: false);                       // diagnostics: the true output
                s.Stats.ShadowErrors[site.Index] = RelativeError.L2(feature, shadow.Feature.AsSpan(0, len));
            }
        }
        else
        {
            bool scores = site.Site == Site.Attn && cache.WantsAttentionScores(site.Block);
            bool norms = site.Site == Site.Attn && cache.WantsValueNorms(site.Block);
            Module(site, bw, s, feature, scores, norms);                                                               // (rows, T, D)
            if (scores)
            {
                cache.RecordAttentionScores(site.Block, s.AttnReceived.AsSpan(0, b * t));                              // cache: attention scores
            }

            if (norms)
            {
                cache.RecordValueNorms(site.Block, s.ValueNorms.AsSpan(0, b * c.Heads * t));                           // cache: value norms
            }

            cache.Record(site, feature);                                                                               // cache: record
            s.Stats.Computed(site, flops);
        }
    }

    /// <summary>The module of <paramref name="site"/> in full into <paramref name="dst"/> (rows, T, D).</summary>
    private void Module(FeatureSite site, DitBlockWeights bw, DitRunState s, Span<float> dst, bool scores, bool norms)
    {
        if (site.Site == Site.Attn)
        {
            Attention(bw, s, dst, scores, norms);
        }
        else
        {
            Mlp(bw, s, s.X.AsSpan(0, s.Rows * Config.Tokens * Config.Hidden), Config.Tokens, dst);
        }
    }

    /// <summary>
    /// attn(modulate(norm1(x), shift_msa, scale_msa)) up to attn.proj, into <paramref name="dst"/> (B, T, D). With
    /// <paramref name="scores"/> the softmax is explicit, one image at a time, and also leaves the attention each
    /// token received, Σ_q mean_h P[q, k], in s.AttnReceived (B, T), for token-wise caches (ToCa, DuCa). With
    /// <paramref name="norms"/> every head's value norm ‖v‖₂ is left in s.ValueNorms (B, H, T) (their kv-norm score).
    /// </summary>
    private void Attention(DitBlockWeights bw, DitRunState s, Span<float> dst, bool scores, bool norms)
    {
        DitConfig c = Config;
        int b = s.Rows, t = c.Tokens, d = c.Hidden, rows = b * t, stride = 6 * d, heads = c.Heads;
        Span<float> h = s.H.AsSpan(0, rows * d), qkv = s.Qkv.AsSpan(0, rows * 3 * d), core = s.AttnCore.AsSpan(0, rows * d);
        Kernels.LayerNormModulate(s.X.AsSpan(0, rows * d), h, s.Mod.AsSpan(0, b * stride), stride, (int)Mod.ShiftMsa * d,
            (int)Mod.ScaleMsa * d, b, t, d, threads: _threads);                                                        // (rows, T, D)
        Kernels.Linear(_gemm, h, bw.Qkv.W, bw.Qkv.B, qkv, rows, d, 3 * d);                                             // (rows, T, 3D)
        if (norms)
        {
            Kernels.ValueNorms(qkv, s.ValueNorms.AsSpan(0, b * heads * t), b, t, heads, c.HeadDim);                    // (rows, H, T)
        }

        if (!scores)
        {
            Kernels.Attention(qkv, core, b, t, heads, c.HeadDim, s.AttnScratch, _threads);                             // (rows, T, D)
        }
        else
        {
            float[] p = s.AttnProbabilities;
            for (int i = 0; i < b; i++)
            {
                Kernels.AttentionWithProbabilities(s.Qkv.AsSpan(i * t * 3 * d, t * 3 * d), s.AttnCore.AsSpan(i * t * d, t * d),
                    p, 1, t, heads, c.HeadDim, _threads);                                                              // (1, T, D), P (H, T, T)
                Kernels.AttentionReceived(p, s.AttnReceived.AsSpan(i * t, t), 1, heads, t);                            // (T)
            }
        }

        Kernels.Linear(_gemm, core, bw.Proj.W, bw.Proj.B, dst, rows, d, d);                                            // (rows, T, D)
    }

    /// <summary>
    /// mlp(modulate(norm2(x), shift_mlp, scale_mlp)) up to fc2 on <paramref name="x"/>, <paramref name="k"/> tokens
    /// of each of the B images (B, k, D), into <paramref name="dst"/> (B, k, D); dst may be x.
    /// </summary>
    private void Mlp(DitBlockWeights bw, DitRunState s, ReadOnlySpan<float> x, int k, Span<float> dst)
    {
        DitConfig c = Config;
        int b = s.Rows, d = c.Hidden, m = c.MlpHidden, rows = b * k, stride = 6 * d;
        Kernels.LayerNormModulate(x[..(rows * d)], s.H.AsSpan(0, rows * d), s.Mod.AsSpan(0, b * stride), stride, (int)Mod.ShiftMlp * d,
            (int)Mod.ScaleMlp * d, b, k, d, threads: _threads);                                                       // (B, k, D)
        Kernels.LinearGeluTanh(_gemm, s.H.AsSpan(0, rows * d), bw.Fc1.W, bw.Fc1.B, s.MlpHidden.AsSpan(0, rows * m), rows, d, m); // (B, k, 4D)
        Kernels.Linear(_gemm, s.MlpHidden.AsSpan(0, rows * m), bw.Fc2.W, bw.Fc2.B, dst[..(rows * d)], rows, m, d);     // (B, k, D)
    }

    /// <summary>
    /// The MLP on k tokens per image, those in s.TokenIndex (B, k), scattered into s.Feature (B, T, D) over the stale
    /// values the cache wrote there. AttnCore is free here and holds the (B, k, D) rows.
    /// </summary>
    private void PartialMlp(DitBlockWeights bw, DitRunState s, int k)
    {
        int b = s.Rows, t = Config.Tokens, d = Config.Hidden;
        if (k == 0)
        {
            return;
        }

        for (int i = 0; i < b; i++)
        {
            for (int j = 0; j < k; j++)
            {
                int token = s.TokenIndex[(i * k) + j];
                if ((uint)token >= (uint)t)
                {
                    throw new InvalidOperationException($"cache policy selected token {token} for image {i}; tokens are 0 … {t - 1}");
                }

                s.X.AsSpan(((i * t) + token) * d, d).CopyTo(s.AttnCore.AsSpan(((i * k) + j) * d, d));                  // gather
            }
        }

        Mlp(bw, s, s.AttnCore, k, s.AttnCore);                                                                         // (B, k, D)
        for (int i = 0; i < b; i++)
        {
            for (int j = 0; j < k; j++)
            {
                int token = s.TokenIndex[(i * k) + j];
                s.AttnCore.AsSpan(((i * k) + j) * d, d).CopyTo(s.Feature.AsSpan(((i * t) + token) * d, d));            // scatter
            }
        }
    }

    /// <summary>
    /// Block 0's modulate(norm1(x), shift_msa, scale_msa) into s.H, for a policy's step indicator (TeaCache); its
    /// adaLN projection is counted as executed.
    /// </summary>
    private void ModulatedInput(DitRunState s)
    {
        DitConfig c = Config;
        int b = s.Batch, t = c.Tokens, d = c.Hidden;
        AdaLnModulation(0, s);                                                                                         // (B, 6D)
        Kernels.LayerNormModulate(s.X, s.H, s.Mod, 6 * d, (int)Mod.ShiftMsa * d, (int)Mod.ScaleMsa * d, b, t, d,
            threads: _threads);                                                                                        // (B, T, D)
        s.Stats.Flops += DitFlops.AdaLn(c, b);
    }

    // ------------------------------------------------------------------------------------------------------------
    // FinalLayer: adaLN (shift, scale), LayerNorm, linear to p*p*out per token

    private void FinalLayer(DitRunState s)
    {
        DitConfig c = Config;
        int b = s.Batch, t = c.Tokens, d = c.Hidden, outPerToken = c.Patch * c.Patch * c.OutChannels;
        Modulation(c.Depth, _w.FinalAdaLn, 2 * d, s);                                                                  // (U, 2D)
        s.Conditions.Expand(s.CondMod, s.FinalMod, 2 * d);                                                             // (B, 2D)
        Kernels.LayerNormModulate(s.X, s.H, s.FinalMod, 2 * d, 0, d, b, t, d, threads: _threads);                      // (B, T, D)
        Kernels.Linear(_gemm, s.H, _w.FinalLinear.W, _w.FinalLinear.B, s.FinalOut, b * t, d, outPerToken);             // (B, T, p*p*out)
    }

    // ------------------------------------------------------------------------------------------------------------
    // DiT forward

    /// <summary>
    /// One forward of <c>s.Batch</c> rows: <paramref name="x"/> (B, C, H, W), per-row model timesteps
    /// <paramref name="timesteps"/> (B) and labels <paramref name="labels"/> (B, the null class allowed), into
    /// <paramref name="output"/> (B, out, H, W).
    /// </summary>
    /// <exception cref="ArgumentException">A span length does not match the state's shapes, or a label is out of range.</exception>
    public void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> timesteps, ReadOnlySpan<int> labels, DitRunState s,
        ICachePolicy cache, Span<float> output)
    {
        CheckShapes(x, timesteps, labels, s, output);
        s.Stats.Clear();
        s.UseAllRows();

        EmbedPatches(x, s);                                                                                            // (B, T, D)
        EmbedConditioning(timesteps, labels, s);                                                                       // (B, D)
        Tap?.Invoke("x_embed", s.X);
        Tap?.Invoke("c", s.C);

        if (cache.WantsModulatedInput)
        {
            ModulatedInput(s);                                                                                         // (B, T, D) in s.H
            cache.ObserveModulatedInput(s.H);                                                                          // cache: step indicator
        }

        if (cache.DecidesPerSample)
        {
            BlockPasses(s, cache);                                                                                     // cache: samples per pass
        }
        else
        {
            BlockStack(s, cache);                                                                                      // (B, T, D)
        }

        FinalLayer(s);                                                                                                 // (B, T, p*p*out)
        DitConfig c = Config;
        Kernels.Unpatchify(s.FinalOut, output, s.Batch, c.OutChannels, c.InputSize, c.InputSize, c.Patch);             // (B, out, H, W)
    }

    /// <summary>
    /// The block stack on the current pass's rows of s.X (rows, T, D): before each block the cache may skip a range
    /// (writing its output), or ask for the block to be verified (<see cref="VerifiedBlock"/>); after each block that
    /// ran, the cache records its output.
    /// </summary>
    private void BlockStack(DitRunState s, ICachePolicy cache)
    {
        int depth = Config.Depth, len = s.Rows * Config.Tokens * Config.Hidden;
        Span<float> x = s.X.AsSpan(0, len);
        for (int l = 0; l < depth;)
        {
            if (s.ShadowBuffers is { } kept)
            {
                x.CopyTo(kept.Input);                                                                                  // diagnostics: keep the input
            }

            int next = cache.SkipBlocks(l, x);                                                                         // cache: skip blocks l … next−1
            if (next == l)
            {
                if (cache.WantsBlockVerification(l))
                {
                    VerifiedBlock(l, s, cache);                                                                        // cache: draft, then verify
                }
                else
                {
                    Block(l, s, cache);                                                                                // (rows, T, D)
                }

                cache.RecordBlock(l, x);                                                                               // cache: record block output
                l++;
                continue;
            }

            if (next < l || next > depth)
            {
                throw new InvalidOperationException($"cache policy asked to skip from block {l} to {next}; the next block must be in ({l}, {depth}]");
            }

            if (s.ShadowBuffers is { } shadow)
            {
                ShadowBlocks(s, shadow, l, next);                                                                      // diagnostics: the true blocks
            }

            s.Stats.Skipped(l, next);
            l = next;
        }
    }

    /// <summary>
    /// Block <paramref name="l"/> twice from the same input: first as the cache has it (its forecasts: the draft),
    /// then with every module computed (the same modulation, not recomputed); the cache compares the two
    /// (<see cref="ICachePolicy.VerifyBlock"/>) and the draft continues. Both runs are counted in the FLOPs.
    /// </summary>
    private void VerifiedBlock(int l, DitRunState s, ICachePolicy cache)
    {
        SampleBuffers buffers = s.SampleBuffers
            ?? throw new InvalidOperationException($"cache policy asked to verify block {l} but does not decide per sample (DecidesPerSample), so the run state has no verification buffers");
        int len = s.Rows * Config.Tokens * Config.Hidden;
        Span<float> x = s.X.AsSpan(0, len), input = buffers.BlockInput.AsSpan(0, len), draft = buffers.BlockDraft.AsSpan(0, len);
        x.CopyTo(input);
        Block(l, s, cache);                                                                                            // (rows, T, D) the draft
        x.CopyTo(draft);
        input.CopyTo(x);
        BlockBody(l, s, NoCache.Instance);                                                                             // (rows, T, D) computed
        cache.VerifyBlock(l, draft, x);                                                                                // cache: verify
        draft.CopyTo(x);
    }

    /// <summary>
    /// The block stack in passes over subsets of the batch (a policy that <see cref="ICachePolicy.DecidesPerSample"/>):
    /// before pass p the policy marks the rows that run (<see cref="ICachePolicy.SelectSamples"/>); they are gathered
    /// from the step's block-stack input into the front rows of the buffers, run through the stack as a batch of their
    /// own (their conditioning rows gathered too), and scattered back; rows that do not run keep what the policy left
    /// in x. With CFG a row and its other half run together. Nothing allocates: the buffers are the state's.
    /// </summary>
    private void BlockPasses(DitRunState s, ICachePolicy cache)
    {
        SampleBuffers buffers = s.EnsureSampleBuffers();
        int batch = s.Batch, row = Config.Tokens * Config.Hidden;
        s.X.CopyTo(buffers.StackInput, 0);                                                                             // (B, T, D) the step's input
        for (int pass = 0; ; pass++)
        {
            s.UseAllRows();
            Span<bool> run = s.RunFlags;
            run.Clear();
            int k = cache.SelectSamples(pass, s.X, run);                                                               // cache: rows of this pass
            if (k == 0)
            {
                return;
            }

            CheckSelection(s, pass, k);
            if (k == batch)
            {
                if (pass > 0)
                {
                    buffers.StackInput.CopyTo(s.X, 0);
                }

                BlockStack(s, cache);                                                                                  // (B, T, D)
                continue;
            }

            s.X.CopyTo(buffers.Parked, 0);
            s.UseRows(run);
            for (int j = 0; j < k; j++)
            {
                buffers.StackInput.AsSpan(s.PassRows[j] * row, row).CopyTo(s.X.AsSpan(j * row, row));                // gather
            }

            BlockStack(s, cache);                                                                                      // (k, T, D)
            for (int j = 0; j < k; j++)
            {
                s.X.AsSpan(j * row, row).CopyTo(buffers.Parked.AsSpan(s.PassRows[j] * row, row));                     // scatter
            }

            buffers.Parked.CopyTo(s.X, 0);
        }
    }

    /// <summary>The rows a policy picked for a pass: as many as it said, and with CFG both halves of every image.</summary>
    private static void CheckSelection(DitRunState s, int pass, int k)
    {
        const int MaxPasses = 64;
        if (pass >= MaxPasses)
        {
            throw new InvalidOperationException($"cache policy asked for block-stack pass {pass}; a step runs at most {MaxPasses} passes");
        }

        ReadOnlySpan<bool> run = s.RunFlags;
        int marked = 0;
        foreach (bool r in run)
        {
            marked += r ? 1 : 0;
        }

        if (k < 0 || k != marked)
        {
            throw new InvalidOperationException($"cache policy returned {k} rows for pass {pass} but marked {marked} of {run.Length}");
        }

        int half = s.CfgHalf;
        for (int i = 0; i < half; i++)
        {
            if (run[i] != run[i + half])
            {
                throw new InvalidOperationException($"cache policy split the CFG pair of image {i} in pass {pass} (rows {i} and {i + half}); both halves of an image run together");
            }
        }
    }

    /// <summary>
    /// Diagnostics for skipped blocks <paramref name="from"/> … <paramref name="to"/> − 1: runs them on the kept input,
    /// measures the stand-in against them, then puts the stand-in back so the sample, FLOPs and counters are those of
    /// the cached run.
    /// </summary>
    private void ShadowBlocks(DitRunState s, ShadowBuffers shadow, int from, int to)
    {
        double flops = s.Stats.Flops;
        int computed = s.Stats.ModulesComputed;
        int len = s.Rows * Config.Tokens * Config.Hidden;
        Span<float> x = s.X.AsSpan(0, len), forecast = shadow.Forecast.AsSpan(0, len);
        x.CopyTo(forecast);
        shadow.Input.AsSpan(0, len).CopyTo(x);
        for (int l = from; l < to; l++)
        {
            Block(l, s, NoCache.Instance);
        }

        s.Stats.ShadowBlocksError = RelativeError.L2(forecast, x);
        forecast.CopyTo(x);
        s.Stats.Flops = flops;
        s.Stats.ModulesComputed = computed;
    }

    /// <summary>
    /// Classifier-free guidance as DiT's <c>forward_with_cfg</c>: runs the batch [x; x] with labels [y; null] and
    /// writes the guided output of the first half into <paramref name="output"/> (N, out, H, W):
    /// <c>eps = uncond + scale·(cond − uncond)</c> on channels [0, <paramref name="guidedChannels"/>), the cond half's
    /// own values elsewhere (the variance channels). <paramref name="guidedChannels"/> = in_channels is standard CFG;
    /// 3 reproduces the official DiT sampler (docs/methods.md §6.3). <paramref name="s"/> must have 2·N rows.
    /// </summary>
    public void ForwardWithCfg(ReadOnlySpan<float> x, float timestep, ReadOnlySpan<int> labels, float cfgScale,
        int guidedChannels, DitRunState s, ICachePolicy cache, Span<float> output)
    {
        DitConfig c = Config;
        int n = labels.Length, image = c.InChannels * c.InputSize * c.InputSize;
        int outImage = c.OutChannels * c.InputSize * c.InputSize, plane = c.InputSize * c.InputSize;
        if (s.Batch != 2 * n)
        {
            throw new ArgumentException($"CFG needs a state of 2*{n} rows, got {s.Batch}", nameof(s));
        }

        if (guidedChannels < 1 || guidedChannels > c.OutChannels)
        {
            throw new ArgumentOutOfRangeException(nameof(guidedChannels), guidedChannels, $"must be in [1, {c.OutChannels}]");
        }

        x.CopyTo(s.CfgInput);                                                                                          // cond half
        x.CopyTo(s.CfgInput.AsSpan(n * image));                                                                        // uncond half
        s.CfgTimesteps.AsSpan().Fill(timestep);
        labels.CopyTo(s.CfgLabels);
        s.CfgLabels.AsSpan(n).Fill(c.NullClass);
        s.CfgHalf = n;                                                                                                 // rows i and N + i are one image
        try
        {
            Forward(s.CfgInput, s.CfgTimesteps, s.CfgLabels, s, cache, s.Output);                                      // (2N, out, H, W)
        }
        finally
        {
            s.CfgHalf = 0;
        }

        int guided = guidedChannels * plane;
        for (int i = 0; i < n; i++)
        {
            ReadOnlySpan<float> cond = s.Output.AsSpan(i * outImage, outImage);
            ReadOnlySpan<float> uncond = s.Output.AsSpan((n + i) * outImage, outImage);
            Span<float> dst = output.Slice(i * outImage, outImage);
            for (int j = 0; j < guided; j++)
            {
                dst[j] = uncond[j] + (cfgScale * (cond[j] - uncond[j]));
            }

            cond[guided..].CopyTo(dst[guided..]);
        }
    }

    private void CheckShapes(ReadOnlySpan<float> x, ReadOnlySpan<float> timesteps, ReadOnlySpan<int> labels,
        DitRunState s, Span<float> output)
    {
        DitConfig c = Config;
        int b = s.Batch, plane = c.InputSize * c.InputSize;
        if (s.Config != c)
        {
            throw new ArgumentException("run state was created for another model config", nameof(s));
        }

        if (x.Length != b * c.InChannels * plane || timesteps.Length != b || labels.Length != b
            || output.Length != b * c.OutChannels * plane)
        {
            throw new ArgumentException(
                $"forward expects x ({b}, {c.InChannels}, {c.InputSize}, {c.InputSize}), {b} timesteps, {b} labels and output ({b}, {c.OutChannels}, {c.InputSize}, {c.InputSize}); " +
                $"got {x.Length} / {timesteps.Length} / {labels.Length} / {output.Length} elements");
        }

        CheckLabels(labels);
    }

    private void CheckLabels(ReadOnlySpan<int> labels)
    {
        DitConfig c = Config;
        foreach (int y in labels)
        {
            if (y < 0 || y > c.NullClass)
            {
                throw new ArgumentException($"label {y} outside [0, {c.NumClasses}] (the last is the null class)", nameof(labels));
            }
        }
    }
}
