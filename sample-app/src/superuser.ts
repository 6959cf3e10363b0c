import { PasswordValidationError, type User, type UserManager } from 'nestjs-session-auth';

/** Where `createSuperuser` asks its questions: the terminal (see `prompt.ts`), or a test. */
export interface Questions {
  ask(question: string, options?: { secret?: boolean }): Promise<string>;
  /** Says what was wrong with an answer before the question is asked again. */
  complain(message: string): void;
}

/**
 * Asks for a username, an email and a password (twice) until the answers are acceptable, then
 * creates a superuser. The password goes through the same validators as the password change
 * page; a superuser has every permission and logs in through `ModelBackend`.
 */
export async function createSuperuser(users: UserManager, questions: Questions): Promise<User> {
  const username = await askUsername(users, questions);
  const email = (await questions.ask('Email address (optional): ')).trim();
  const password = await askPassword(users, questions, { username, email });
  return users.createSuperuser({ username, email, password });
}

async function askUsername(users: UserManager, questions: Questions): Promise<string> {
  for (;;) {
    const username = (await questions.ask('Username: ')).trim().normalize('NFKC');
    if (!username) questions.complain('The username cannot be blank.');
    else if (username.length > 150) questions.complain('The username must be at most 150 characters.');
    else if (await users.findByUsername(username)) questions.complain(`The username ${username} is already taken.`);
    else return username;
  }
}

async function askPassword(users: UserManager, questions: Questions, user: { username: string; email: string }): Promise<string> {
  for (;;) {
    const password = await questions.ask('Password: ', { secret: true });
    if ((await questions.ask('Password (again): ', { secret: true })) !== password) {
      questions.complain('The passwords didn’t match.');
      continue;
    }
    try {
      await users.validatePassword(password, user);
      return password;
    } catch (error) {
      if (!(error instanceof PasswordValidationError)) throw error;
      for (const issue of error.errors) questions.complain(issue.message);
    }
  }
}
