using PureVlm.Formats.Images;
using PureVlm.Outputs;
using PureVlm.Runtime;
using PureVlm.Tensors;

namespace PureVlm.Inspection;

/// <summary>One input of a quality comparison: an image and a prompt (a <c>detect …</c> prompt also compares boxes).</summary>
public sealed record QualityCase(string ImagePath, string Prompt);

/// <summary>How one quantized model compares with the reference on one case.</summary>
/// <param name="Case">The input.</param>
/// <param name="Reference">The reference model's greedy answer.</param>
/// <param name="Answer">The quantized model's greedy answer.</param>
/// <param name="Positions">Next-token distributions compared (the prompt's, then one after each reference answer token).</param>
/// <param name="MeanKl">Mean KL(P_reference ‖ P_quantized) over those positions, in nats.</param>
/// <param name="MaxKl">The largest of them.</param>
/// <param name="Top1Agreed">Positions where both models' most likely tokens agree.</param>
/// <param name="Iou">For a detect prompt with boxes in either answer, the mean IoU of the boxes paired in order (a box without a partner counts 0); else null.</param>
public sealed record QualityCaseResult(QualityCase Case, string Reference, string Answer, int Positions, double MeanKl, double MaxKl, int Top1Agreed, double? Iou);

/// <summary>How one quantized model compares with the reference over all cases.</summary>
/// <param name="Label">The quantized model's name (e.g. <c>Q8</c>, or its folder).</param>
/// <param name="Cases">Inputs compared.</param>
/// <param name="Positions">Next-token distributions compared, over all cases.</param>
/// <param name="MeanKl">Mean KL(P_reference ‖ P_quantized) over every compared position of every case, in nats.</param>
/// <param name="MaxKl">The largest KL at any position.</param>
/// <param name="Top1Agreement">Fraction of positions whose most likely tokens agree.</param>
/// <param name="IdenticalAnswers">Cases whose greedy answers are the same text.</param>
/// <param name="DetectCases">Cases with a <c>detect</c> prompt and boxes in either answer.</param>
/// <param name="MeanIou">Mean box IoU over those cases, or null without any.</param>
/// <param name="PerCase">Each case's figures and answers.</param>
public sealed record QualityResult(string Label, int Cases, int Positions, double MeanKl, double MaxKl, double Top1Agreement,
    int IdenticalAnswers, int DetectCases, double? MeanIou, IReadOnlyList<QualityCaseResult> PerCase);

/// <summary>
/// Compares a quantized model with the float one it came from, as <c>purevlm quality</c> prints it: both answer each
/// case greedily; then both run the prompt followed by the reference's answer (teacher forcing) and every next-token
/// distribution is compared (KL divergence from the reference's, and whether the most likely tokens agree).
/// </summary>
public static class QuantizationQuality
{
    /// <summary>Runs every case through both models; <paramref name="progress"/> gets (cases done, cases).</summary>
    public static QualityResult Compare(VlmModel reference, VlmModel quantized, string label, IReadOnlyList<QualityCase> cases,
        int maxNewTokens = 32, Action<int, int>? progress = null, CancellationToken cancel = default)
    {
        var options = new GenerationOptions { MaxNewTokens = maxNewTokens };
        var results = new List<QualityCaseResult>();
        foreach (var c in cases)
        {
            cancel.ThrowIfCancellationRequested();
            var image = ImageLoader.Load(c.ImagePath);
            var expected = reference.Generate(image, c.Prompt, options, cancel);
            var answer = quantized.Generate(image, c.Prompt, options, cancel);
            var ids = expected.Tokens.Select(t => t.Id).ToArray();
            bool detect = c.Prompt.TrimStart().StartsWith("detect ", StringComparison.Ordinal);
            results.Add(CompareDistributions(c, expected.Text, answer.Text,
                Distributions(reference, image, c.Prompt, ids, options), Distributions(quantized, image, c.Prompt, ids, options),
                detect ? PairedIou(expected.Detections, answer.Detections) : null));
            progress?.Invoke(results.Count, cases.Count);
        }
        return Summarize(label, results);
    }

    /// <summary>
    /// The same comparison on token ids and pixel values, for checkpoints without a tokenizer (the test fixtures):
    /// greedy answers are token id sequences (stopping at <c>eos_token_id</c>), written as ids.
    /// </summary>
    public static QualityResult CompareIds(LoadedModel reference, LoadedModel quantized, string label, int[] inputIds, Tensor? pixelValues, int maxNewTokens = 32)
    {
        var expected = Greedy(reference, inputIds, pixelValues, maxNewTokens);
        var answer = Greedy(quantized, inputIds, pixelValues, maxNewTokens);
        var c = new QualityCase("", string.Join(' ', inputIds));
        return Summarize(label, [CompareDistributions(c, string.Join(' ', expected), string.Join(' ', answer),
            Distributions(reference, inputIds, pixelValues, expected), Distributions(quantized, inputIds, pixelValues, expected), null)]);
    }

    static int[] Greedy(LoadedModel model, int[] inputIds, Tensor? pixelValues, int maxNewTokens)
    {
        var session = model.CreateSession();
        var logits = session.Prefill(inputIds, pixelValues == null ? default : session.EncodeImage(pixelValues));
        var ids = new List<int>();
        while (ids.Count < maxNewTokens)
        {
            int next = ArgMax(logits);
            if (model.Config.EosTokenIds.Contains(next)) break;
            ids.Add(next);
            logits = session.Decode(next);
        }
        return [.. ids];
    }

    static QualityCaseResult CompareDistributions(QualityCase c, string reference, string answer, List<float[]> p, List<float[]> q, double? iou)
    {
        double sum = 0, max = 0;
        int agreed = 0;
        for (int i = 0; i < p.Count; i++)
        {
            double kl = KlDivergence(p[i], q[i]);
            sum += kl;
            max = Math.Max(max, kl);
            if (ArgMax(p[i]) == ArgMax(q[i])) agreed++;
        }
        return new(c, reference, answer, p.Count, sum / p.Count, max, agreed, iou);
    }

    static QualityResult Summarize(string label, List<QualityCaseResult> results)
    {
        int positions = results.Sum(r => r.Positions);
        var ious = results.Where(r => r.Iou != null).Select(r => r.Iou!.Value).ToList();
        return new(label, results.Count, positions,
            results.Sum(r => r.MeanKl * r.Positions) / Math.Max(1, positions), results.Count == 0 ? 0 : results.Max(r => r.MaxKl),
            (double)results.Sum(r => r.Top1Agreed) / Math.Max(1, positions), results.Count(r => r.Reference == r.Answer),
            ious.Count, ious.Count == 0 ? null : ious.Average(), results);
    }

    /// <summary>
    /// The logits after the prompt and after each of <paramref name="answer"/>'s tokens (teacher forcing), with the
    /// prompt and image laid out as a generation lays them out (Molmo's crops included).
    /// </summary>
    static List<float[]> Distributions(VlmModel model, RgbImage image, string prompt, int[] answer, GenerationOptions options)
    {
        using var request = new VlmModel.Request(model, [image], prompt, options);
        var logits = new List<float[]> { request.Prefill().ToArray() };
        foreach (int id in answer) logits.Add(request.Session.Decode(id).ToArray());
        return logits;
    }

    /// <summary>The logits after the prompt and after each of <paramref name="answer"/>'s tokens (teacher forcing).</summary>
    static List<float[]> Distributions(LoadedModel model, int[] prompt, Tensor? pixelValues, int[] answer)
    {
        var session = model.CreateSession();
        var logits = new List<float[]> { session.Prefill(prompt, pixelValues == null ? default : session.EncodeImage(pixelValues)).ToArray() };
        foreach (int id in answer) logits.Add(session.Decode(id).ToArray());
        return logits;
    }

    /// <summary>KL(P ‖ Q) in nats between the softmax distributions of two logit vectors, computed in double.</summary>
    public static double KlDivergence(ReadOnlySpan<float> p, ReadOnlySpan<float> q)
    {
        if (p.Length != q.Length) throw new ArgumentException($"logits of {p.Length} and {q.Length} tokens");
        double lp = LogSumExp(p), lq = LogSumExp(q), kl = 0;
        for (int i = 0; i < p.Length; i++)
        {
            double logP = p[i] - lp;
            kl += Math.Exp(logP) * (logP - (q[i] - lq));
        }
        return Math.Max(0, kl);
    }

    static double LogSumExp(ReadOnlySpan<float> x)
    {
        double max = double.NegativeInfinity, sum = 0;
        foreach (float v in x) max = Math.Max(max, v);
        foreach (float v in x) sum += Math.Exp(v - max);
        return max + Math.Log(sum);
    }

    static int ArgMax(ReadOnlySpan<float> x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }

    /// <summary>
    /// Mean IoU of boxes paired in order; a box without a partner counts 0. Null when neither answer holds a box: there
    /// is nothing to agree on (a model that does not detect would otherwise read as agreeing perfectly).
    /// </summary>
    public static double? PairedIou(IReadOnlyList<Detection> a, IReadOnlyList<Detection> b)
    {
        int n = Math.Max(a.Count, b.Count);
        if (n == 0) return null;
        double sum = 0;
        for (int i = 0; i < Math.Min(a.Count, b.Count); i++) sum += Iou(a[i].Box, b[i].Box);
        return sum / n;
    }

    /// <summary>Intersection over union of two boxes [x0, y0, x1, y1].</summary>
    public static double Iou(float[] a, float[] b)
    {
        double w = Math.Max(0, Math.Min(a[2], b[2]) - Math.Max(a[0], b[0])), h = Math.Max(0, Math.Min(a[3], b[3]) - Math.Max(a[1], b[1]));
        double inter = w * h, union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
        return union <= 0 ? 0 : inter / union;
    }
}
