namespace DitCache.Models;

/// <summary>
/// FLOPs in the DiT-paper convention of the TaylorSeer/ToCa/FoCa tables (docs/methods.md §9.1): 2 FLOPs per
/// multiply-add, blocks only (embedders and final layer are not counted). For DiT-XL/2 at 256×256 one image forward
/// is 237.35 GFLOPs. Every figure is for <c>batch</c> rows (2·N with classifier-free guidance).
/// </summary>
public static class DitFlops
{
    /// <summary>Attention sub-layer: qkv, scores, softmax, weighted sum, projection.</summary>
    public static double Attention(DitConfig c, int batch)
    {
        double b = batch, n = c.Tokens, d = c.Hidden, h = c.Heads, hd = c.HeadDim;
        return (b * n * d * 3 * d * 2) + (b * h * n * hd) + (b * h * n * n * hd * 2) + (5 * b * h * n * n)
            + (b * h * n * n * hd * 2) + (b * n * d * d * 2);
    }

    /// <summary>One LayerNorm (the convention counts 2·B·N·C for the two of a block; this is half of it).</summary>
    public static double LayerNorm(DitConfig c, int batch) => (double)batch * c.Tokens * c.Hidden;

    /// <summary>adaLN modulation of one block: SiLU plus Linear(D, 6D).</summary>
    public static double AdaLn(DitConfig c, int batch) => ((double)batch * c.Hidden) + ((double)batch * c.Hidden * 6 * c.Hidden);

    /// <summary>MLP sub-layer: fc1, GELU, fc2.</summary>
    public static double Mlp(DitConfig c, int batch)
    {
        double b = batch, n = c.Tokens, d = c.Hidden, m = c.MlpHidden;
        return (2 * (b * n * d * m * 2)) + (6 * b * n * m);
    }

    /// <summary>One block computed in full.</summary>
    public static double Block(DitConfig c, int batch) =>
        Attention(c, batch) + Mlp(c, batch) + (2 * LayerNorm(c, batch)) + AdaLn(c, batch);

    /// <summary>One forward of the whole model with every block computed.</summary>
    public static double Forward(DitConfig c, int batch) => c.Depth * Block(c, batch);
}
