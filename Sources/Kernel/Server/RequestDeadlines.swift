import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Closes a connection that holds the server without sending a request: a request's head must be
/// complete within `idle` of the connection opening or of the previous answer's end (an idle
/// keep-alive connection, or headers sent slowly or never finished), and its body within `body` of
/// its head (a slow body, or a `Content-Length` that is never sent). While an answer is being
/// written (an event stream, a large read) no deadline runs.
final class RequestDeadlines: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let idle: TimeAmount
    let body: TimeAmount
    private var deadline: Scheduled<Void>?
    /// Requests read whose answer has not ended yet.
    private var unanswered = 0

    init(idle: TimeAmount, body: TimeAmount) {
        self.idle = idle
        self.body = body
    }

    private func arm(_ context: ChannelHandlerContext, after delay: TimeAmount) {
        deadline?.cancel()
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        deadline = context.eventLoop.scheduleTask(in: delay) { loopBound.value.close(promise: nil) }
    }

    private func disarm() {
        deadline?.cancel()
        deadline = nil
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context, after: idle) }
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context, after: idle)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        disarm()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) { disarm() }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            unanswered += 1
            arm(context, after: body)
        case .body:
            break
        case .end:
            // Answered already (an early refusal, its body drained after): the connection is idle again.
            if unanswered == 0 { arm(context, after: idle) } else { disarm() }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            unanswered = max(0, unanswered - 1)
            if unanswered == 0 { arm(context, after: idle) }
        }
        context.write(data, promise: promise)
    }
}
