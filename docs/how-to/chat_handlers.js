// A namespace's handlers, as deployed to AWS (ChannelNamespace.codeHandlers).
import { util } from '@aws-appsync/utils'

export function onPublish(ctx) {
  console.log(`publishing ${ctx.events.length} event(s) to ${ctx.info.channel.path}`)
  return ctx.events.map((event) => {
    if (typeof event.payload.text !== 'string') {
      return { id: event.id, error: 'text must be a string' } // -> result.failed
    }
    return {
      id: event.id,
      payload: { ...event.payload, text: event.payload.text.trim(), at: util.time.nowISO8601() },
    }
  })
}

export function onSubscribe(ctx) {
  if (ctx.info.channel.segments.includes('admin')) {
    util.unauthorized() // subscribe_error "Unauthorized"
  }
}
