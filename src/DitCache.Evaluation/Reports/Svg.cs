using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using System.Text;

namespace DitCache.Evaluation.Reports;

/// <summary>
/// Building blocks of the bench charts: XML escaping, coordinates that can never print as NaN, nice axis ticks, the
/// colour-blind-safe palette and marker shapes, text-width estimates for layout, and a document frame.
/// </summary>
internal static class Svg
{
    /// <summary>The font stack of every chart (DejaVu Sans is what a bare Linux headless browser has).</summary>
    public const string FontFamily = "system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', Helvetica, Arial, sans-serif";

    /// <summary>Text colour of titles, axes and labels.</summary>
    public const string Ink = "#222222";

    /// <summary>Text colour of notes and tick labels.</summary>
    public const string Muted = "#555555";

    /// <summary>Colour of grid lines.</summary>
    public const string Grid = "#e6e6e6";

    // Okabe & Ito (2008), "Color Universal Design", with the yellow (#F0E442, unreadable on white) swapped for
    // Paul Tol's olive. Marker shapes cycle with a different period (5) so colour and shape together stay unique
    // for 40 series, and a reader who cannot tell two colours apart still has the shape.
    private static readonly string[] s_palette =
    [
        "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#999933",
    ];

    private const int Shapes = 5;

    /// <summary>Series colour of style <paramref name="style"/>.</summary>
    public static string Colour(int style) => s_palette[style % s_palette.Length];

    /// <summary>Escapes text for XML/HTML content and attribute values (&amp;, &lt;, &gt;, both quotes).</summary>
    public static string Escape(string text)
    {
        var sb = new StringBuilder(text.Length + 8);
        foreach (char c in text)
        {
            sb.Append(c switch
            {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '"' => "&quot;",
                '\'' => "&#39;",
                _ => c.ToString(),
            });
        }

        return sb.ToString();
    }

    /// <summary>
    /// A coordinate or length, invariant culture, at most two decimals. Callers only pass finite numbers (every data
    /// value is filtered before layout); a non-finite one is a bug, and prints as 0 rather than NaN in a release build.
    /// </summary>
    public static string Num(double v)
    {
        Debug.Assert(double.IsFinite(v), "an SVG coordinate must be finite");
        return double.IsFinite(v) ? Math.Round(v, 2).ToString("0.##", CultureInfo.InvariantCulture) : "0";
    }

    /// <summary>Rough rendered width (px) of <paramref name="text"/> at <paramref name="size"/> px in a sans-serif font.</summary>
    public static double TextWidth(string text, double size) => text.Length * size * 0.6;

    /// <summary>Opens a standalone SVG document of the given size, with a white background and an accessible title.</summary>
    public static StringBuilder Open(double width, double height, string title)
    {
        var sb = new StringBuilder();
        sb.Append("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"").Append(Num(width)).Append("\" height=\"").Append(Num(height))
          .Append("\" viewBox=\"0 0 ").Append(Num(width)).Append(' ').Append(Num(height))
          .Append("\" font-family=\"").Append(Escape(FontFamily)).Append("\" font-size=\"13\" fill=\"").Append(Ink)
          .Append("\" role=\"img\">\n");
        sb.Append("<title>").Append(Escape(title)).Append("</title>\n");
        sb.Append("<rect x=\"0\" y=\"0\" width=\"").Append(Num(width)).Append("\" height=\"").Append(Num(height)).Append("\" fill=\"#ffffff\"/>\n");
        return sb;
    }

    /// <summary>Appends a text element; <paramref name="attributes"/> is raw attribute text (already escaped).</summary>
    public static void Text(StringBuilder sb, double x, double y, string text, string attributes = "")
    {
        sb.Append("<text x=\"").Append(Num(x)).Append("\" y=\"").Append(Num(y)).Append('"');
        if (attributes.Length > 0)
        {
            sb.Append(' ').Append(attributes);
        }

        sb.Append('>').Append(Escape(text)).Append("</text>\n");
    }

    /// <summary>Appends a line segment.</summary>
    public static void Line(StringBuilder sb, double x1, double y1, double x2, double y2, string stroke, double width = 1, string extra = "")
    {
        sb.Append("<line x1=\"").Append(Num(x1)).Append("\" y1=\"").Append(Num(y1)).Append("\" x2=\"").Append(Num(x2))
          .Append("\" y2=\"").Append(Num(y2)).Append("\" stroke=\"").Append(stroke).Append("\" stroke-width=\"").Append(Num(width)).Append('"');
        if (extra.Length > 0)
        {
            sb.Append(' ').Append(extra);
        }

        sb.Append("/>\n");
    }

    /// <summary>Appends a marker of style <paramref name="style"/> (shape cycles with period 5) centred on (x, y).</summary>
    public static void Marker(StringBuilder sb, double x, double y, int style, double r)
    {
        string fill = Colour(style);
        const string Edge = "stroke=\"#ffffff\" stroke-width=\"1\"";
        switch (style % Shapes)
        {
            case 0:
                sb.Append("<circle cx=\"").Append(Num(x)).Append("\" cy=\"").Append(Num(y)).Append("\" r=\"").Append(Num(r))
                  .Append("\" fill=\"").Append(fill).Append("\" ").Append(Edge).Append("/>\n");
                break;
            case 1:
                double s = r * 0.9;
                sb.Append("<rect x=\"").Append(Num(x - s)).Append("\" y=\"").Append(Num(y - s)).Append("\" width=\"").Append(Num(2 * s))
                  .Append("\" height=\"").Append(Num(2 * s)).Append("\" fill=\"").Append(fill).Append("\" ").Append(Edge).Append("/>\n");
                break;
            case 2:
                Polygon(sb, fill, Edge, (x, y - (1.2 * r)), (x + (1.1 * r), y + (0.8 * r)), (x - (1.1 * r), y + (0.8 * r)));
                break;
            case 3:
                Polygon(sb, fill, Edge, (x, y - (1.25 * r)), (x + (1.1 * r), y), (x, y + (1.25 * r)), (x - (1.1 * r), y));
                break;
            default:
                Polygon(sb, fill, Edge, (x, y + (1.2 * r)), (x + (1.1 * r), y - (0.8 * r)), (x - (1.1 * r), y - (0.8 * r)));
                break;
        }
    }

    private static void Polygon(StringBuilder sb, string fill, string edge, params (double X, double Y)[] points)
    {
        sb.Append("<polygon points=\"").Append(string.Join(" ", points.Select(p => Num(p.X) + "," + Num(p.Y))))
          .Append("\" fill=\"").Append(fill).Append("\" ").Append(edge).Append("/>\n");
    }

    /// <summary>Appends a polyline through <paramref name="points"/> (at least two).</summary>
    public static void Polyline(StringBuilder sb, IEnumerable<(double X, double Y)> points, string stroke, double width, string extra = "")
    {
        sb.Append("<polyline points=\"").Append(string.Join(" ", points.Select(p => Num(p.X) + "," + Num(p.Y))))
          .Append("\" fill=\"none\" stroke=\"").Append(stroke).Append("\" stroke-width=\"").Append(Num(width))
          .Append("\" stroke-linejoin=\"round\" stroke-linecap=\"round\"");
        if (extra.Length > 0)
        {
            sb.Append(' ').Append(extra);
        }

        sb.Append("/>\n");
    }

    /// <summary>
    /// A "nice" linear axis over [<paramref name="min"/>, <paramref name="max"/>]: the range widened to multiples of a
    /// step of 1, 2, 2.5 or 5 × 10^k with about <paramref name="target"/> intervals.
    /// </summary>
    public static (double Lo, double Hi, double Step) NiceAxis(double min, double max, int target = 6)
    {
        if (!(max > min))
        {
            double pad = Math.Abs(min) > 0 ? Math.Abs(min) * 0.1 : 1;
            min -= pad;
            max += pad;
        }

        double raw = (max - min) / target;
        double mag = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        double step = mag * (raw / mag) switch
        {
            <= 1 => 1,
            <= 2 => 2,
            <= 2.5 => 2.5,
            <= 5 => 5,
            _ => 10,
        };
        double lo = Math.Floor((min / step) + 1e-9) * step;
        double hi = Math.Ceiling((max / step) - 1e-9) * step;
        return (lo, hi, step);
    }

    /// <summary>Tick label: invariant culture, as many decimals as the step needs.</summary>
    public static string TickLabel(double value, double step)
    {
        int decimals = Math.Clamp((int)Math.Ceiling(-Math.Log10(step) - 1e-9), 0, 6);
        if (step * Math.Pow(10, decimals) % 1 > 1e-6)
        {
            decimals++; // 2.5 × 10^k needs one more digit
        }

        return Math.Round(value, decimals).ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
    }

    /// <summary>Tick label of a power of ten on a log axis: plain decimals from 1e-4 to 1e4, else 1e±k.</summary>
    public static string DecadeLabel(int k) => k switch
    {
        >= 0 and <= 4 => Math.Pow(10, k).ToString("0", CultureInfo.InvariantCulture),
        < 0 and >= -4 => Math.Pow(10, k).ToString("0.####", CultureInfo.InvariantCulture),
        _ => "1e" + k.ToString(CultureInfo.InvariantCulture),
    };
}
