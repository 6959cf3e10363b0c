/** `nestjs-session-auth/messages`: one-time messages kept in the session (Django's messages framework). */
export { messages, MESSAGES_SESSION_KEY, type FlashMessage, type MessageLevel } from '../messages.js';
