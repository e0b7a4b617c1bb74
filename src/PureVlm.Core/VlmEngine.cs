using PureVlm.Formats.Images;
using PureVlm.Runtime;

namespace PureVlm;

/// <summary>Raised when a <see cref="VlmEngine"/>'s queue is full; the caller should retry later.</summary>
public sealed class QueueFullException(string message) : Exception(message);

/// <summary>
/// Runs many requests on one <see cref="VlmModel"/> from one loop thread: the requests being answered decode together,
/// one forward pass per step with a row per request (<see cref="BatchDecoder"/>), so each weight is read once per step
/// for all of them. Between two decode steps the loop admits at most one waiting request (image encode + prefill), so new
/// requests join without starving running ones. Greedy answers equal <see cref="VlmModel.Generate(RgbImage, string, GenerationOptions?, CancellationToken)"/>'s.
/// Thread-safe.
/// </summary>
public sealed class VlmEngine : IDisposable
{
    /// <summary>The model it serves.</summary>
    public VlmModel Model { get; }
    /// <summary>Most requests decoding together.</summary>
    public int MaxBatch { get; }
    /// <summary>Most requests waiting beyond the free places of the batch; more are refused with <see cref="QueueFullException"/>.</summary>
    public int MaxQueue { get; }

    readonly object _lock = new();
    readonly Queue<Job> _waiting = new();
    readonly List<Job> _active = new();
    Job? _admitting; // dequeued, being prefilled outside the lock: it holds a place in the batch
    readonly BatchDecoder _decoder;
    readonly Thread _loop;
    bool _stopping;

    /// <summary>An engine over <paramref name="model"/> (which the caller keeps and disposes after the engine).</summary>
    public VlmEngine(VlmModel model, int maxBatch = 8, int maxQueue = 64)
    {
        if (maxBatch < 1 || maxBatch > BatchDecoder.MaxBatch) throw new ArgumentOutOfRangeException(nameof(maxBatch), maxBatch, $"maxBatch is {maxBatch}, expected 1 to {BatchDecoder.MaxBatch}");
        if (maxQueue < 0) throw new ArgumentOutOfRangeException(nameof(maxQueue), maxQueue, $"maxQueue is {maxQueue}, expected >= 0");
        (Model, MaxBatch, MaxQueue) = (model, maxBatch, maxQueue);
        _decoder = new BatchDecoder(model.Loaded);
        _loop = new Thread(Loop) { IsBackground = true, Name = "purevlm-engine" };
        _loop.Start();
    }

    /// <summary>Requests decoding now.</summary>
    public int Active { get { lock (_lock) return Running; } }

    int Running => _active.Count + (_admitting == null ? 0 : 1);
    /// <summary>Requests waiting for a place.</summary>
    public int Waiting { get { lock (_lock) return _waiting.Count; } }

    /// <summary>
    /// Queues a request and completes with its answer. Bad input (no image, unknown adapter, a prompt that does not fit)
    /// throws here, before queueing; a full queue throws <see cref="QueueFullException"/>. <paramref name="onPiece"/>
    /// receives each piece of text as it is generated with the token that added it (null for the replacement characters of
    /// an answer cut inside a UTF-8 character); it runs on the engine's thread, so it must not block. Cancelling
    /// <paramref name="cancel"/> stops the request within one step. Requests with an observer are refused: they run alone
    /// through <see cref="VlmModel.Generate(IReadOnlyList{RgbImage}, string, GenerationOptions?, Action{string}?, CancellationToken)"/>.
    /// </summary>
    public Task<GenerationResult> GenerateAsync(IReadOnlyList<RgbImage> images, string prompt, GenerationOptions? options = null,
        Action<string, AnswerToken?>? onPiece = null, CancellationToken cancel = default)
    {
        options ??= new GenerationOptions();
        if (options.Observer != null) throw new ArgumentException("an observed request cannot share a forward pass; use VlmModel.Generate", nameof(options));
        cancel.ThrowIfCancellationRequested();
        var job = new Job(new VlmModel.Request(Model, images, prompt, options), onPiece, cancel);
        lock (_lock)
        {
            string? refusal = _stopping ? "the engine is stopping"
                : _waiting.Count >= MaxQueue && Running + _waiting.Count >= MaxBatch ? $"the queue is full ({MaxQueue} requests waiting)" : null;
            if (refusal != null)
            {
                job.Request.Dispose();
                if (_stopping) throw new ObjectDisposedException(nameof(VlmEngine), refusal);
                throw new QueueFullException(refusal);
            }
            _waiting.Enqueue(job);
            Monitor.Pulse(_lock);
        }
        return job.Completion.Task;
    }

    /// <summary>As <see cref="GenerateAsync(IReadOnlyList{RgbImage}, string, GenerationOptions?, Action{string, AnswerToken?}?, CancellationToken)"/> for one image.</summary>
    public Task<GenerationResult> GenerateAsync(RgbImage image, string prompt, GenerationOptions? options = null,
        Action<string, AnswerToken?>? onPiece = null, CancellationToken cancel = default) =>
        GenerateAsync([image], prompt, options, onPiece, cancel);

    /// <summary>Stops the loop: requests still waiting or decoding are cancelled. Returns once the loop has exited.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            _stopping = true;
            Monitor.Pulse(_lock);
        }
        _loop.Join();
    }

    void Loop()
    {
        var sessions = new List<InferenceSession>(MaxBatch);
        var tokens = new int[MaxBatch];
        while (true)
        {
            Job? admit = null;
            lock (_lock)
            {
                while (!_stopping && _waiting.Count == 0 && _active.Count == 0) Monitor.Wait(_lock);
                if (_stopping)
                {
                    foreach (var job in _waiting.Concat(_active)) job.Cancel();
                    _waiting.Clear();
                    _active.Clear();
                    return;
                }
                _active.RemoveAll(job => job.CancelIfAsked());
                while (_active.Count < MaxBatch && _waiting.Count > 0 && admit == null)
                {
                    var next = _waiting.Dequeue();
                    if (!next.CancelIfAsked()) admit = next;
                }
                _admitting = admit;
            }
            // The compute runs outside the lock so that new requests can queue meanwhile. A prefill runs whole, not in chunks
            // mixed into decode steps: PaliGemma's prefix (image + prompt) attends bidirectionally, so a chunk would need the
            // keys of the chunks after it, and chunking would change the answers.
            if (admit != null)
            {
                try
                {
                    var logits = admit.Request.Prefill();
                    if (admit.Deliver(admit.Request.Sampler.Pick(logits, 0))) lock (_lock) _active.Add(admit);
                }
                catch (Exception e) { admit.Fail(e); }
                finally { lock (_lock) _admitting = null; }
            }
            Job[] batch;
            lock (_lock) batch = _active.ToArray();
            if (batch.Length == 0) continue;
            sessions.Clear();
            for (int s = 0; s < batch.Length; s++)
            {
                sessions.Add(batch[s].Request.Session);
                tokens[s] = batch[s].Request.LastToken;
            }
            List<Job> finished = new();
            try
            {
                var logits = _decoder.Decode(sessions, tokens.AsSpan(0, batch.Length));
                int vocab = logits.Length / batch.Length;
                for (int s = 0; s < batch.Length; s++)
                {
                    var request = batch[s].Request;
                    if (!batch[s].Deliver(request.Sampler.Pick(logits.Slice(s * vocab, vocab), request.Generated))) finished.Add(batch[s]);
                }
            }
            catch (Exception e)
            {
                // A failed step leaves every session as it was, but which request caused it is unknown: fail them all.
                foreach (var job in batch) job.Fail(e);
                finished.AddRange(batch);
            }
            if (finished.Count > 0) lock (_lock) _active.RemoveAll(finished.Contains);
        }
    }

    /// <summary>A queued or running request with its caller's callback, cancellation and completion.</summary>
    sealed class Job(VlmModel.Request request, Action<string, AnswerToken?>? onPiece, CancellationToken cancel)
    {
        public VlmModel.Request Request { get; } = request;
        public TaskCompletionSource<GenerationResult> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Passes a token on; true while the request goes on, false once it has completed (answered or failed).</summary>
        public bool Deliver(GeneratedToken t)
        {
            try
            {
                var token = Request.Accept(t);
                if (token is { Text.Length: > 0 }) onPiece?.Invoke(token.Text, token);
                if (!Request.Done) return true;
                string tail = Request.Finish();
                if (tail.Length > 0) onPiece?.Invoke(tail, null);
                var result = Request.Result(); // masks of a segment answer are decoded here, while the lease is held
                Request.Dispose();
                Completion.TrySetResult(result);
            }
            catch (Exception e) { Fail(e); }
            return false;
        }

        /// <summary>Cancels the request if its caller asked to; true if it did.</summary>
        public bool CancelIfAsked()
        {
            if (!cancel.IsCancellationRequested) return false;
            Cancel();
            return true;
        }

        public void Cancel()
        {
            Request.Dispose();
            Completion.TrySetCanceled(cancel.IsCancellationRequested ? cancel : CancellationToken.None);
        }

        public void Fail(Exception e)
        {
            Request.Dispose();
            Completion.TrySetException(e);
        }
    }
}
